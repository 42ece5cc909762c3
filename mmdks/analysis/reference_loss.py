"""The synergy loss as the reference code computes it, one pair at a time:
what :class:`~mmdks.models.losses.SynergyLoss` is tested and timed
against."""
import itertools
from typing import Sequence

import torch
import torch.nn.functional as F

# Which (student m, teacher n) pairs each mode matches, written out here
# rather than taken from the loss module, so that the reference does not
# share the code it checks.
_TEACHES = {
    'dense': lambda m, n: n != m,
    'top_down': lambda m, n: n > m,
    'bottom_up': lambda m, n: n < m,
}


def reference_synergy(logits: Sequence[torch.Tensor],
                      pairs: str = 'dense',
                      temperature: float = 1.0,
                      alpha: float = 1.0,
                      eps: float = 0.0) -> torch.Tensor:
    """One KL call per ordered pair, summed, as the reference code's
    main.py does, generalised to T and the one-way pair sets.

    With ``eps == 0`` each term is ``F.kl_div`` of the student's
    log-softmax against the detached teacher's softmax (the exact KL). With
    ``eps > 0`` it is a transcription of wrn_DKS/KL_divergence.py: both
    distributions smoothed, ``x' = (x + eps) / (1 + C eps)``, and
    ``mean_b sum_c p' log(p' / q')``.

    Args:
        logits (Sequence[Tensor]): K logits of shape (N, C), shallowest
            first (a (K, N, C) tensor works too).
        pairs (str): ``'dense'``, ``'top_down'`` or ``'bottom_up'``.
            Defaults to ``'dense'``.
        temperature (float): Softmax temperature T; each term is scaled
            by T^2. Defaults to 1.0.
        alpha (float): Weight of the sum. Defaults to 1.0.
        eps (float): The reference code's smoothing; 0 is the exact KL.
            Defaults to 0.

    Returns:
        Tensor: A scalar, ``alpha * T^2 * sum_pairs KL(sg[q_n] || q_m)``.
    """
    teaches = _TEACHES[pairs]
    num, num_classes = len(logits), logits[0].size(1)
    total = logits[0].new_zeros(())
    for m, n in itertools.product(range(num), range(num)):
        if not teaches(m, n):
            continue
        if eps:
            p = F.softmax(logits[n].detach() / temperature, dim=1)
            q = F.softmax(logits[m] / temperature, dim=1)
            p_ = (p + eps) / (1.0 + num_classes * eps)
            q_ = (q + eps) / (1.0 + num_classes * eps)
            kl = torch.mean(torch.sum(p_ * torch.log(p_ / q_), 1))
        else:
            target = F.softmax(logits[n] / temperature, dim=1).detach()
            kl = F.kl_div(
                F.log_softmax(logits[m] / temperature, dim=1),
                target,
                reduction='batchmean')
        total = total + kl * temperature**2
    return alpha * total
