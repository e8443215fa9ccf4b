"""Least-squares GAN losses and the gradient penalty on real images (EPE's objective).

Discriminator outputs are lists of realism maps (one per discriminator head); each term is a
mean over the map, summed over heads with equal weight, over the whole batch (EPE used only
batch element 0).
"""
from __future__ import annotations

import torch


def ls_discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Real maps should be 1, fake maps 0."""
    return sum(((1 - r) ** 2).mean() + (f ** 2).mean() for r, f in zip(real, fake))


def ls_generator_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    return sum(((1 - f) ** 2).mean() for f in fake)


def ls_real_term(real: list[torch.Tensor]) -> torch.Tensor:
    return sum(((1 - r) ** 2).mean() for r in real)


def real_gradient_penalty(real_loss: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """mean_b ||d real_loss / d real_image_b||^2, EPE's R1-style regulariser on the LS loss.

    `real_images` must require grad and `real_loss` must be built from it (create_graph keeps
    the penalty differentiable w.r.t. the discriminator).
    """
    (grad,) = torch.autograd.grad(real_loss, real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()
