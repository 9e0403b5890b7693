"""DrNAS (Chen et al., 2021): each edge's op mixture is a sample of a Dirichlet with learned concentration.

The concentration of edge e is β_e = ELU(α_e) + 1 > 0 (the paper's parameterisation); each
step draws w_e ~ Dir(β_e) with :meth:`torch.distributions.Dirichlet.rsample`, whose
pathwise (implicit reparameterisation) gradient carries ∂L/∂w to α. The α loss adds the
paper's regulariser, the KL divergence to the anchor Dir(1):

    L_val(w) + λ · Σ_e KL(Dir(β_e) ‖ Dir(1)),

which keeps the concentration from growing without bound (the stochasticity is what
discourages the collapse to parameter-free ops). The mixture read out for evaluation and
logging is the Dirichlet mean β_e / Σ_k β_ek; its argmax is α's (ELU + 1 is increasing).
The paper's progressive partial-channel schedule is not part of this method here (that is
``pcdarts``).

The sampler draws from torch's global generator (``rsample`` takes none), so the search
checkpoint keeps that generator's state too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence


def concentration(alpha: torch.Tensor) -> torch.Tensor:
    """β = ELU(α) + 1, shape as α (E, |ops|); positive everywhere."""
    return F.elu(alpha) + 1.0


def dirichlet_weights(alpha: torch.Tensor) -> tuple[torch.Tensor, None]:
    """One reparameterised sample w_e ~ Dir(β_e) per edge (rows on the simplex), dense: every op computed."""
    return Dirichlet(concentration(alpha)).rsample(), None


def anchor_kl(alpha: torch.Tensor) -> torch.Tensor:
    """Σ_e KL(Dir(β_e) ‖ Dir(1)), a scalar (0 exactly when every β_e is all ones)."""
    beta = concentration(alpha)
    return kl_divergence(Dirichlet(beta), Dirichlet(torch.ones_like(beta))).sum()


def dirichlet_mean(alpha: torch.Tensor) -> torch.Tensor:
    """E[w_e] = β_e / Σ_k β_ek, shape (E, |ops|)."""
    beta = concentration(alpha)
    return beta / beta.sum(dim=-1, keepdim=True)
