"""MLP WGAN-GP as a person writes it in PyTorch (seeds 000/001 style), timed like the harness."""

import torch
from torch import nn

from bench.tools.baselines.common import BETAS, LAM, LR, N_CRITIC, setup, time_blocks


def main() -> None:
    args, w, x, stream = setup()
    dev = torch.device("cuda" if args.device == "gpu" else "cpu")
    G = nn.Sequential(nn.Linear(100, 128), nn.ReLU(), nn.Linear(128, 784), nn.Sigmoid()).to(dev)
    D = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 1)).to(dev)
    with torch.no_grad():
        for net, seq in (("G", G), ("D", D)):
            for i in (0, 2):
                seq[i].weight.copy_(torch.from_numpy(w[f"{net}.{i}.w"].T))
                seq[i].bias.copy_(torch.from_numpy(w[f"{net}.{i}.b"]))
    opt_g = torch.optim.Adam(G.parameters(), lr=LR, betas=BETAS)
    opt_d = torch.optim.Adam(D.parameters(), lr=LR, betas=BETAS)
    data = torch.from_numpy(x).to(dev)

    def run_block(b):
        idx, z_d, alpha, z_g = (torch.from_numpy(b[k]).to(dev) for k in ("idx", "z_d", "alpha", "z_g"))
        for k in range(idx.shape[0]):
            for c in range(N_CRITIC):
                real = data[idx[k, c]]
                fake = G(z_d[k, c]).detach()
                x_hat = (alpha[k, c] * real + (1 - alpha[k, c]) * fake).requires_grad_(True)
                (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
                gp = ((grad.norm(2, dim=1) - 1) ** 2).mean()
                d_loss = D(fake).mean() - D(real).mean() + LAM * gp
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
            for p in D.parameters():
                p.requires_grad_(False)
            g_loss = -D(G(z_g[k])).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            for p in D.parameters():
                p.requires_grad_(True)
        float(g_loss.detach())  # wait for the device, as the harness does once per block

    time_blocks(args, stream, run_block)


if __name__ == "__main__":
    main()
