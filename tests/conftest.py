"""Suite-wide settings. Hypothesis draws the same examples on every run and every machine (derandomized, no example
database), so a green run cannot turn red by chance; a failing example found once is added as an explicit case."""
import os

from hypothesis import settings

settings.register_profile("suite", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, deadline=None, print_blob=True)
# HYPOTHESIS_PROFILE=explore draws new examples (to look for bugs); the suite itself is deterministic.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


EPS32 = 2.0 ** -23    # float32's machine epsilon


def fp32_atol(reference, reduction: int, layers: int = 1, c: float = 4.0) -> float:
    """Absolute tolerance for two float32 computations of `reference` that differ only in the order of their
    floating-point operations (another CPU kernel set or thread count, fused or unpadded kernels, another library).

    Error model: a dot product of K terms carries a rounding error of about sqrt(K)·eps·(size of its terms) when
    the rounding errors are independent (Higham, *Accuracy and Stability of Numerical Algorithms*, §2-3); the
    errors of L layers add like a random walk (sqrt(L)); the terms are of the size of the activations, measured by
    the root mean square of `reference`. `reduction` is the longest sum per layer (the feed-forward width). c = 4
    is the margin: the errors measured on these machines sit 5-20x below the bound, while a real bug (a wrong mask,
    scale or weight) is orders of magnitude above it."""
    rms = float(reference.detach().double().pow(2).mean().sqrt())
    return c * (layers * reduction) ** 0.5 * EPS32 * rms
