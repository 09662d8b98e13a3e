"""ImageNet ResNet-34 weights for the matting encoder: three checkpoint formats, one download cache.

The encoder (`A2UResNetEncoder`, ResNet-34 cut to [3, 4, 4] blocks) is initialised the MMEngine way: its
`init_cfg=dict(type='Pretrained', checkpoint=...)` is applied by MMEngine's `PretrainedInit` (inside
`Runner.train()`'s `init_weights()`), and a load-state-dict pre-hook (`convert_on_load`) turns a foreign
checkpoint into the encoder's own keys while it loads. Accepted checkpoints (detected from the keys):

| format | where it comes from | stem key | example block key |
|---|---|---|---|
| torchvision | `torchvision.models.resnet34` state_dict, e.g. https://download.pytorch.org/models/resnet34-b627a593.pth | `conv1.weight` | `layer2.0.downsample.0.weight` |
| official | the A2U repository's ImageNet ResNet-34 (mapillary inplace-ABN, `{'state_dict': ...}`, `module.` prefix) | `module.mod1.conv1.weight` | `module.mod3.block1.proj_conv.weight` |
| own | this encoder's state_dict (optionally under `encoder.`) | `layer0.conv.weight` | `layer2_1.shortcut.conv.weight` |

Key map (torchvision | official -> ours), with `s` = 2, 3 and block `i` counted from 0 (official `block<i+1>`):

| torchvision | official (`module.` stripped) | ours |
|---|---|---|
| `conv1.weight`, `bn1.*` | `mod1.conv1.weight`, `mod1.bn1.*` | `layer0.conv.weight`, `layer0.bn.*` |
| `layer1.i.{conv1,bn1,conv2,bn2}` | `mod2.block<i+1>.convs.{conv1,bn1,conv2,bn2}` | `layer1.i.{conv1.conv,conv1.bn,conv2.conv,conv2.bn}` |
| `layer<s>.0.{conv1,bn1,conv2,bn2}` | `mod<s+1>.block1.convs.{...}` | `layer<s>_1.{conv1.conv,conv1.bn,conv2.conv,conv2.bn}` |
| `layer<s>.0.downsample.{0,1}` | `mod<s+1>.block1.{proj_conv,proj_bn}` | `layer<s>_1.shortcut.{conv,bn}` |
| `layer<s>.i.*` (i >= 1) | `mod<s+1>.block<i+1>.*` | `layer<s>_2.<i-1>.*` |
| dropped: `layer3.4-5`, `layer4.*`, `fc.*` | dropped: `mod4.block5-6`, `mod5.*`, `bn_out.*`, `classifier.*` | (no target: [3, 4, 4]) |

The 7×7 stem was trained at stride 2 on RGB; it is reused at stride 1, its RGB filters copied and the 4th
(trimap) input channel set to zero, as the official `resnetmat()` does. Unlike the official loader (which skips
any key it cannot place), a load that leaves an encoder tensor unfilled, brings a tensor of an unexpected name or
shape, or matches nothing is an error. BatchNorm `num_batches_tracked` counters (absent from both foreign
formats) keep the encoder's own values.

An `http(s)://` checkpoint is fetched once into torch.hub's cache (`<torch.hub.get_dir()>/checkpoints/`) by
`ensure_cached`, its sha256 checked against the hash prefix in the file name (torch.hub's `name-<hash>.ext`
convention: `resnet34-b627a593.pth`); MMEngine's loader then reads the cached copy. Without network and without a
cached copy the error names the URL, the cache path and the setting to change.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import urlparse

import torch

#: torchvision's ImageNet ResNet-34 (IMAGENET1K_V1): the `paper` profile's encoder initialisation.
TORCHVISION_RESNET34_URL = "https://download.pytorch.org/models/resnet34-b627a593.pth"
#: The key of the stem conv in the encoder (widened from 3 to `in_channels` input channels on load).
STEM_KEY = "layer0.conv.weight"
#: Where to change the weights, for error messages (the pipeline's param and the config field it fills).
SETTING = ("params.yaml `train.encoder_weights` (a local file, an https URL, or `none` for a random init; "
           "it fills the config's `model.network.encoder_init_cfg`)")

_TV_BLOCK = re.compile(r"^layer([1234])\.(\d+)\.(.+)$")
_TV_PARTS = {"conv1.weight": "conv1.conv.weight", "conv2.weight": "conv2.conv.weight",
             "downsample.0.weight": "shortcut.conv.weight"}
_TV_NORMS = {"bn1.": "conv1.bn.", "bn2.": "conv2.bn.", "downsample.1.": "shortcut.bn."}
_OFFICIAL_BLOCK = re.compile(r"^mod([2345])\.block(\d+)\.(.+)$")
_OFFICIAL_PARTS = {"convs.conv1.": "conv1.conv.", "convs.bn1.": "conv1.bn.", "convs.conv2.": "conv2.conv.",
                   "convs.bn2.": "conv2.bn.", "proj_conv.": "shortcut.conv.", "proj_bn.": "shortcut.bn."}


class EncoderWeightsError(ValueError):
    """A pretrained encoder checkpoint that cannot be loaded completely (the message names the keys)."""


class PretrainedWeightsUnavailable(RuntimeError):
    """An https checkpoint that is neither cached nor downloadable (the message names URL, cache and setting)."""


@dataclass
class LoadReport:
    """What a pretrained load did: the source format, how many encoder tensors it filled, what it dropped."""

    checkpoint: str = ""
    format: str = ""
    matched: int = 0
    total: int = 0
    stem_widened: bool = False
    dropped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "format": self.format, "matched": self.matched,
                "total": self.total, "stem_widened": self.stem_widened, "n_dropped": len(self.dropped),
                "dropped_groups": dropped_groups(self.dropped)}

    def line(self) -> str:
        """The log line of a pretrained encoder load."""
        stem = ("stem: RGB filters copied, trimap channel zero" if self.stem_widened
                else "stem loaded as stored")
        dropped = (f"; dropped {len(self.dropped)} source tensors without a target "
                   f"({', '.join(dropped_groups(self.dropped))})" if self.dropped else "")
        return (f"encoder: loaded pretrained weights {self.checkpoint} ({self.format} format): {self.matched} of "
                f"{self.total} encoder tensors matched; {stem}{dropped}")


def dropped_groups(keys: Sequence[str]) -> list[str]:
    """Dropped keys summarised by their first two components (`layer4.0`, `fc`, `mod4.block5`, ...)."""
    groups: list[str] = []
    for key in keys:
        parts = key.split(".")
        group = ".".join(parts[:2]) if parts[0] not in ("fc", "bn_out", "classifier") else parts[0]
        if group not in groups:
            groups.append(group)
    return groups


# ------------------------------------------------------------------------------------------------ key maps
def _block_prefix(stage: int, index: int) -> str:
    """Our prefix of block `index` (from 0) of ResNet stage `stage` (1..3)."""
    if stage == 1:
        return f"layer1.{index}."
    return f"layer{stage}_1." if index == 0 else f"layer{stage}_2.{index - 1}."


def _map_tv_suffix(suffix: str) -> str | None:
    if suffix in _TV_PARTS:
        return _TV_PARTS[suffix]
    for source, target in _TV_NORMS.items():
        if suffix.startswith(source):
            return target + suffix[len(source):]
    return None


def map_torchvision_resnet34(state_dict: Mapping[str, torch.Tensor], num_blocks: Sequence[int] = (3, 4, 4),
                             ) -> dict[str, torch.Tensor]:
    """Rename torchvision `resnet34` keys to encoder keys, dropping those without a target (layer3.4-5, layer4, fc).

    `conv1.weight` keeps its 3 input channels here (`convert_encoder_state` widens it). Raises KeyError naming a
    key of an unexpected form.
    """
    return _map_torchvision(state_dict, num_blocks)[0]


def _map_torchvision(state_dict: Mapping[str, torch.Tensor], num_blocks: Sequence[int]
                     ) -> tuple[dict[str, torch.Tensor], list[str]]:
    mapped: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state_dict.items():
        if key == "conv1.weight":
            mapped[STEM_KEY] = value
            continue
        if key.startswith("bn1."):
            mapped["layer0.bn." + key[len("bn1."):]] = value
            continue
        if key.startswith("fc."):
            dropped.append(key)
            continue
        match = _TV_BLOCK.match(key)
        suffix = _map_tv_suffix(match.group(3)) if match else None
        if match is None or suffix is None:
            raise KeyError(f"unexpected key {key!r} in a torchvision-style resnet34 state_dict")
        stage, index = int(match.group(1)), int(match.group(2))
        if stage == 4 or index >= num_blocks[stage - 1]:
            dropped.append(key)  # layer4 and layer3 blocks 4-5 have no target (structure [3, 4, 4])
            continue
        mapped[_block_prefix(stage, index) + suffix] = value
    return mapped, dropped


def map_official_resnet34(state_dict: Mapping[str, torch.Tensor], num_blocks: Sequence[int] = (3, 4, 4),
                          ) -> dict[str, torch.Tensor]:
    """Rename the A2U repository's ResNet-34 keys (mapillary `mod*`, `module.` stripped) to encoder keys."""
    return _map_official(state_dict, num_blocks)[0]


def _map_official(state_dict: Mapping[str, torch.Tensor], num_blocks: Sequence[int]
                  ) -> tuple[dict[str, torch.Tensor], list[str]]:
    mapped: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state_dict.items():
        if key == "mod1.conv1.weight":
            mapped[STEM_KEY] = value
            continue
        if key.startswith("mod1.bn1."):
            mapped["layer0.bn." + key[len("mod1.bn1."):]] = value
            continue
        if key.startswith(("bn_out.", "classifier.", "mod5.")):
            dropped.append(key)
            continue
        match = _OFFICIAL_BLOCK.match(key)
        part = next((p for p in _OFFICIAL_PARTS if match and match.group(3).startswith(p)), None)
        if match is None or part is None:
            raise KeyError(f"unexpected key {key!r} in an official (mapillary) resnet34 state_dict")
        stage, index = int(match.group(1)) - 1, int(match.group(2)) - 1
        if index >= num_blocks[stage - 1]:
            dropped.append(key)  # mod4.block5/6 have no target (structure [3, 4, 4])
            continue
        mapped[_block_prefix(stage, index) + _OFFICIAL_PARTS[part] + match.group(3)[len(part):]] = value
    return mapped, dropped


def _strip(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def detect_format(state: Mapping[str, torch.Tensor]) -> str:
    """'torchvision', 'official' or 'own' from the stem key (after stripping `module.` / `encoder.`)."""
    if "conv1.weight" in state:
        return "torchvision"
    if "mod1.conv1.weight" in state:
        return "official"
    return "own"


def convert_encoder_state(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor],
                          num_blocks: Sequence[int] = (3, 4, 4), checkpoint: str = "",
                          ) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Any accepted checkpoint (see the module docstring) -> a complete encoder state_dict, and its report.

    `own` is the encoder's current state_dict (target names and shapes). Raises `EncoderWeightsError` naming
    the missing, unexpected or mis-shaped keys unless every encoder tensor is filled.
    """
    state = _strip(_strip(state, "module."), "encoder.")
    fmt = detect_format(state)
    if fmt == "torchvision":
        mapped, dropped = _map_torchvision(state, num_blocks)
    elif fmt == "official":
        mapped, dropped = _map_official(state, num_blocks)
    else:
        mapped, dropped = dict(state), []
    where = checkpoint or "encoder weights"
    report = LoadReport(checkpoint=checkpoint, format=fmt, dropped=dropped)
    if STEM_KEY in mapped and STEM_KEY in own and mapped[STEM_KEY].shape != own[STEM_KEY].shape:
        stem, target = mapped[STEM_KEY], own[STEM_KEY]
        if stem.ndim != 4 or stem.shape[0] != target.shape[0] or stem.shape[2:] != target.shape[2:] \
                or stem.shape[1] > target.shape[1]:
            raise EncoderWeightsError(f"{where}: stem weight shape {tuple(stem.shape)} does not fit "
                                      f"{tuple(target.shape)}")
        widened = torch.zeros_like(target)
        widened[:, :stem.shape[1]] = stem.to(target.dtype)
        mapped[STEM_KEY] = widened
        report.stem_widened = True
    counters = [k for k in own if k.endswith("num_batches_tracked")]
    for key in counters:
        mapped.setdefault(key, own[key])
    missing = sorted(set(own) - set(mapped))
    unexpected = sorted(set(mapped) - set(own))
    mismatched = sorted(k for k in set(own) & set(mapped) if tuple(mapped[k].shape) != tuple(own[k].shape))
    if missing or unexpected or mismatched:
        details = [f"{name} {keys[:4]}{' ...' if len(keys) > 4 else ''} ({len(keys)})"
                   for name, keys in (("missing", missing), ("unexpected", unexpected),
                                      ("shape-mismatched", mismatched)) if keys]
        raise EncoderWeightsError(f"{where} ({fmt} format) does not fill the [3, 4, 4] ResNet-34 encoder: "
                                  + "; ".join(details) + " (a partial load is refused)")
    report.total = len(own) - len(counters)
    report.matched = report.total  # every parameter / statistic of the encoder came from the file (checked above)
    return mapped, report


def convert_on_load(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, local_metadata: Any,
                    strict: bool, missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
    """Load-state-dict pre-hook of the encoder: convert a torchvision / official checkpoint in place.

    Own-format state dicts (resume, evaluation) pass through untouched unless the encoder is loading its
    `init_cfg` checkpoint (`module._pretrained_loading`), which is then checked for completeness as well.
    """
    keys = [k for k in state_dict if k.startswith(prefix)]
    local = {k[len(prefix):]: state_dict[k] for k in keys}
    stripped = _strip(_strip(local, "module."), "encoder.")
    loading = getattr(module, "_pretrained_loading", None)
    if detect_format(stripped) == "own" and loading is None:
        return
    converted, report = convert_encoder_state(local, module.state_dict(), module.num_blocks, loading or "")
    for key in keys:
        del state_dict[key]
    state_dict.update({prefix + k: v for k, v in converted.items()})
    module.pretrained_report = report


# ------------------------------------------------------------------------------------------------ download
def is_url(checkpoint: str) -> bool:
    """True for an http(s) checkpoint (fetched into torch.hub's cache), False for a local path."""
    return str(checkpoint).startswith(("http://", "https://"))


def cache_path(url: str) -> Path:
    """Where torch.hub (and so MMEngine's `load_from_http`) keeps `url`: `<hub dir>/checkpoints/<file name>`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def hash_prefix(url: str) -> str | None:
    """The sha256 prefix in the file name (`resnet34-b627a593.pth` -> 'b627a593'), or None."""
    match = torch.hub.HASH_REGEX.search(os.path.basename(urlparse(url).path))
    return match.group(1) if match and match.group(1) else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_cached(url: str) -> Path:
    """Download `url` into torch.hub's cache once (sha256 checked against the name's hash prefix); return the path.

    A cached copy is re-checked against the hash prefix. Raises `PretrainedWeightsUnavailable` naming the URL,
    the cache path and the setting when the file is neither cached nor downloadable, and when a hash differs.
    """
    path, expected = cache_path(url), hash_prefix(url)
    if path.is_file():
        if expected and not _sha256(path).startswith(expected):
            raise PretrainedWeightsUnavailable(
                f"{path}: the cached copy of {url} fails its sha256 check (expected prefix {expected}); delete it "
                f"to download again, or set {SETTING}")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=expected, progress=False)
    except RuntimeError as err:  # torch.hub: "invalid hash value (expected ..., got ...)"
        raise PretrainedWeightsUnavailable(f"{url}: the downloaded file fails its sha256 check ({err}); nothing "
                                           f"was cached at {path}") from err
    except (OSError, ValueError) as err:  # no network, DNS, HTTP errors (URLError is an OSError), bad URL
        raise PretrainedWeightsUnavailable(
            f"cannot download the encoder weights {url} ({type(err).__name__}: {err}) and there is no cached copy "
            f"at {path}. Without network, copy the file to that path (its sha256 must start with {expected}), "
            f"or set {SETTING}") from err
    return path
