"""Distribution shifts of test images for `bnexp eval --shift`: deterministic functions of
uint8 (N, H, W, C) pixels that return uint8 pixels of the same shape. NumPy (and
scipy.ndimage for rotations by other angles than multiples of 90°); no TensorFlow.

    noise=SIGMA    x + SIGMA * z, z standard normal from NumPy's default_rng(NOISE_SEED),
                   in pixel units 0..255 (noise=80 is strong), rounded, clipped to 0..255
    rotate=DEG     every image rotated counter-clockwise by DEG degrees about its centre:
                   90, 180, 270 exactly by np.rot90; any other angle bilinearly (below)
    contrast=F     each image's deviations from its own mean (over its pixels and
                   channels) scaled by F: mean + F (x - mean), rounded, clipped
    invert         255 - x

The trap: "deterministic" means the same pixels for the same images on every call and in
every run folder, so that runs evaluated under a shift see one and the same test set and
compare can pair them; the noise is drawn afresh from NOISE_SEED on each call, never
from a generator that advances between calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bnexp.errors import BadInput, did_you_mean

NOISE_SEED = 0
# name -> what its value is (None: the shift takes no value)
NAMES = {"noise": "SIGMA", "rotate": "DEG", "contrast": "F", "invert": None}
EXPECTED = "noise=SIGMA, rotate=DEG, contrast=F or invert"
NO_SHIFT = "none"  # eval.csv's shift column where no shift was applied


@dataclass(frozen=True)
class Shift:
    """One shift: its name and value (None for invert), as `parse` reads them."""

    name: str
    value: float | None = None

    @property
    def label(self) -> str:
        """The shift as eval.csv and compare's metric names write it: noise=80, rotate=270
        (an angle modulo 360), contrast=0.5, invert. Equal shifts, equal labels."""
        return self.name if self.value is None else f"{self.name}={number_text(self.value)}"

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The shifted copy of uint8 (N, H, W, C) pixels x, uint8 of the same shape."""
        x = np.asarray(x)
        if self.name == "invert":
            return (255 - x).astype(np.uint8)
        if self.name == "rotate":
            return rotate(x, self.value)
        if self.name == "noise":
            rng = np.random.default_rng(NOISE_SEED)
            return to_pixels(x + self.value * rng.standard_normal(x.shape, dtype=np.float32))
        mean = x.mean(axis=tuple(range(1, x.ndim)), keepdims=True, dtype=np.float64)
        return to_pixels(mean + self.value * (x - mean))


def parse(spec: str, option: str = "--shift") -> Shift:
    """The shift `spec` names ("noise=80"); BadInput naming the option for an unknown name,
    a missing, extra or bad value (not a finite number; SIGMA and F below 0)."""
    name, eq, text = str(spec).partition("=")
    name = name.strip()
    if name not in NAMES:
        raise BadInput(f"{option} {spec}: unknown shift {name!r}; expected {EXPECTED}"
                       f"{did_you_mean(name, list(NAMES))}")
    what = NAMES[name]
    if what is None:
        if eq:
            raise BadInput(f"{option} {spec}: {name} takes no value; write {name}")
        return Shift(name)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (name != "rotate" and value < 0):
        bound = "a number" if name == "rotate" else "a number of at least 0"
        raise BadInput(f"{option} {spec}: {name}={what}: {what} must be {bound}, e.g. "
                       f"{name}={_EXAMPLES[name]}")
    if name == "rotate":
        value = value % 360.0
    return Shift(name, value + 0.0)  # -0.0 -> 0.0


_EXAMPLES = {"noise": "80", "rotate": "90", "contrast": "0.5"}


def parse_all(specs: str | list[str] | None, option: str = "--shift") -> list[Shift]:
    """Each spec parsed, in order (they apply in that order): [] for None."""
    if specs is None:
        return []
    return [parse(spec, option) for spec in ([specs] if isinstance(specs, str) else specs)]


def label_of(shifts: list[Shift]) -> str:
    """The shifts' labels joined by "+" in the order they apply ("rotate=90+noise=80"), or
    "none": eval.csv's shift column."""
    return "+".join(s.label for s in shifts) or NO_SHIFT


def apply_all(shifts: list[Shift], x: np.ndarray) -> np.ndarray:
    for shift in shifts:
        x = shift.apply(x)
    return x


def number_text(value: float) -> str:
    """A number as a label writes it: 80, not 80.0; 0.5; 1e-07 (repr: exact, shortest)."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def to_pixels(values: np.ndarray) -> np.ndarray:
    """Values rounded to the nearest whole number (halves to even) and clipped to 0..255,
    as uint8."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def rotate(x: np.ndarray, degrees: float) -> np.ndarray:
    """uint8 (N, H, W, C) images rotated counter-clockwise (as shown, row 0 on top) by
    `degrees` about each image's centre, same shape. Multiples of 90 (square images for 90
    and 270) exactly by np.rot90. Any other angle: output pixel p takes the bilinear
    interpolation of the input at p rotated back by `degrees` about the centre
    ((H - 1) / 2, (W - 1) / 2), the input taken as 0 (black) outside the image
    (scipy.ndimage.rotate, order=1, mode="grid-constant", reshape=False), then rounded and
    clipped as every shift is (`to_pixels`)."""
    quarter, rest = divmod(degrees % 360.0, 90.0)
    if rest == 0 and (quarter % 2 == 0 or x.shape[1] == x.shape[2]):
        return np.ascontiguousarray(np.rot90(x, int(quarter), axes=(1, 2)))
    from scipy import ndimage  # only for other angles: scipy's import costs compare time

    turned = ndimage.rotate(x.astype(np.float32), degrees, axes=(1, 2), reshape=False,
                            order=1, mode="grid-constant", cval=0.0, prefilter=False)
    return to_pixels(turned)
