"""The AC-GAN paper's own networks (Odena, Olah, Shlens 2017, appendix tables of hyper-parameters).

CIFAR-10 (32×32) and ImageNet (128×128), read layer by layer from the appendix tables:

    G_x(z): input z (100) ++ one-hot class (paper: a 110-d input for 10 classes)
      CIFAR-10                                ImageNet
      Linear → 384 maps, ReLU                 Linear → 768 maps, ReLU
      TConv 5×5 /2 → 192, BN, ReLU            TConv 5×5 /2 → 384, BN, ReLU
      TConv 5×5 /2 →  96, BN, ReLU            TConv 5×5 /2 → 256, BN, ReLU
      TConv 5×5 /2 →   3, Tanh                TConv 5×5 /2 → 192, BN, ReLU
                                              TConv 5×5 /2 →   3, Tanh
    D(x), both resolutions: six 3×3 convolutions, strides 2,1,2,1,2,1, maps 16,32,64,128,256,512,
      BN on all but the first, LeakyReLU 0.2, dropout 0.5 after each; Linear → 1 + num_classes
      ("11" in the tables: source + 10 classes; sigmoid and softmax, applied in the losses here).
    Init: weights N(0, 0.02), biases 0. Adam lr 2e-4 (CIFAR-10: searched over 1e-4..3e-4),
      β = (0.5, 0.999), batch size 100, 50000 iterations (the presets acgan-*-paper.yaml).

What the tables leave open, and what is used here:
  * The spatial size of the linear layer's output: the tables list only its feature maps. Each
    5×5 stride-2 transposed convolution doubles the size ("SAME" padding: padding 2, output
    padding 1), so 32 px needs a 4×4 start (3 upsamplings) and 128 px an 8×8 start (4).
    clvrai/ACGAN-PyTorch (network.py) instead reshapes to 1×1 with "VALID" padding, which cannot
    reach 32 or 128 with these layers (it adds a 64-map layer with an 8×8 kernel at 128 px).
  * Padding of D's 3×3 convolutions: 1 ("SAME"), so the features are 512×4×4 at 32 px and
    512×16×16 at 128 px (as in clvrai's CIFAR-10 D).
  * Biases: layers followed by BatchNorm have none (BN's shift replaces them).
  * Dropout is `model.dropout` (the paper presets set it to 0.5) so it stays one config value.
The class enters only G's input; D sees x alone and predicts the class (AC-GAN). With
`num_classes = 0` the same nets are an unconditional pair (D then has only the source output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condgan.errors import ConfigError

# (resolution, G widths from the linear layer down to the last hidden layer)
PAPER_G = {"acgan_cifar": (32, (384, 192, 96)), "acgan_imagenet": (128, (768, 384, 256, 192))}
D_WIDTHS = (16, 32, 64, 128, 256, 512)
D_STRIDES = (2, 1, 2, 1, 2, 1)


def paper_resolution(arch: str, height: int, width: int) -> int:
    """The image size `arch` generates; refuses data of another size with one line."""
    resolution = PAPER_G[arch][0]
    if (height, width) != (resolution, resolution):
        raise ConfigError(f"model.arch {arch} needs {resolution}×{resolution} images, found {height}×{width} "
                          f"(set data.resolution={resolution} to resize)")
    return resolution


def init_paper_weights(module: nn.Module) -> None:
    """Appendix: weights isotropic Gaussian N(0, 0.02), biases constant 0 (BN keeps γ=1, β=0)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class PaperGenerator(nn.Module):
    """G_x(z, c) of the appendix tables; see the module docstring."""

    def __init__(self, arch: str, z_dim: int, num_classes: int, channels: int) -> None:
        super().__init__()
        resolution, widths = PAPER_G[arch]
        self.z_dim, self.num_classes = z_dim, num_classes
        self.start = resolution // 2 ** len(widths)  # 32/2³ = 4, 128/2⁴ = 8
        self.fc = nn.Linear(z_dim + num_classes, widths[0] * self.start**2)  # table: no BN, ReLU
        blocks: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            blocks += [nn.ConvTranspose2d(w_in, w_out, 5, 2, 2, output_padding=1, bias=False),
                       nn.BatchNorm2d(w_out), nn.ReLU(True)]
        blocks += [nn.ConvTranspose2d(widths[-1], channels, 5, 2, 2, output_padding=1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)
        init_paper_weights(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:  # c: class indices, or N×K class vectors (soft one-hot, for interpolation)
            onehot = c.to(z.dtype) if c.is_floating_point() else F.one_hot(c, self.num_classes).to(z.dtype)
            z = torch.cat([z, onehot], dim=1)
        h = F.relu(self.fc(z)).view(z.shape[0], -1, self.start, self.start)
        return self.blocks(h)


class PaperDiscriminator(nn.Module):
    """D(x) of the appendix tables: (source logit, class logits or None); `features` is φ(x)."""

    def __init__(self, arch: str, num_classes: int, channels: int, dropout: float = 0.5) -> None:
        super().__init__()
        resolution = PAPER_G[arch][0]
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        w_in, size = channels, resolution
        for i, (w_out, stride) in enumerate(zip(D_WIDTHS, D_STRIDES)):
            layers.append(nn.Conv2d(w_in, w_out, 3, stride, 1, bias=i == 0))
            if i > 0:  # table: no BN on the first convolution
                layers.append(nn.BatchNorm2d(w_out))
            layers.append(nn.LeakyReLU(0.2, True))
            if dropout:
                layers.append(nn.Dropout(dropout))
            w_in, size = w_out, size // stride
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = w_in * size**2  # 512·4² at 32 px, 512·16² at 128 px
        # The tables' one linear layer with 1 + num_classes outputs, kept as two heads (same parameters).
        self.source = nn.Linear(self.feature_dim, 1)
        self.classes = nn.Linear(self.feature_dim, num_classes) if num_classes else None
        init_paper_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.body(x)
        return self.source(h).squeeze(1), (self.classes(h) if self.classes is not None else None)
