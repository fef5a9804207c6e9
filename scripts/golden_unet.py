# Golden file for tests/test_golden_unet.lua: a small U-Net-like network in
# PyTorch (conv, BN, ReLU, max-pool, transposed conv, nearest and bilinear
# upsampling, concat, softmax and sigmoid heads), one forward and backward on a
# fixed input, then one SGD-momentum step and one Adam step from those
# gradients. Everything goes into tests/golden_unet.safetensors.
#   /usr/bin/python3 scripts/golden_unet.py
import os, sys
import torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, os.path.dirname(__file__))
from safetensors_torch import save

torch.manual_seed(1234)

def block(cin, cout):
    # no conv bias before BN: its true gradient is 0, and Adam would amplify float noise
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

class TinyUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1 = block(1, 4)
        self.enc2 = block(4, 8)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.side = nn.Conv2d(8, 4, 1)
        self.dec = block(12, 4)
        self.head = nn.Conv2d(4, 3, 1)
        self.aux = nn.Conv2d(4, 1, 1)
    def forward(self, x):
        s1 = self.enc1(x)
        b = self.enc2(F.max_pool2d(s1, 2))
        u1 = self.up(b)
        u2 = self.side(F.interpolate(b, scale_factor=2, mode="nearest"))
        u3 = F.interpolate(u2, scale_factor=1, mode="bilinear", align_corners=False)
        d = self.dec(torch.cat([s1, u1, u3], 1))
        return self.head(d), self.aux(d)

net = TinyUNet()
initial_buffers = {k: v.detach().clone() for k, v in net.named_buffers()}
x = torch.randn(2, 1, 8, 8)
target = torch.randint(0, 3, (2, 8, 8))
mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
logits, aux = net(x)
probs = F.softmax(logits, 1)
loss = F.cross_entropy(logits, target) + F.binary_cross_entropy_with_logits(aux, mask)
loss.backward()

out = {"input": x, "target": target, "mask": mask, "logits": logits.detach(), "aux": aux.detach(),
       "probs": probs.detach(), "loss": loss.detach()}
params = dict(net.named_parameters())
for k, v in params.items():
    out["init." + k] = v.detach().clone()
    out["grad." + k] = v.grad.detach().clone()
for k, v in net.named_buffers():
    out["buffer0." + k] = initial_buffers[k]  # before the forward pass
    out["buffer." + k] = v.detach().clone()   # after it (running statistics updated)

for name, make in (("sgd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4)),
                   ("adam", lambda p: torch.optim.Adam(p, lr=1e-2))):
    clones = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    for k, v in clones.items():
        v.grad = params[k].grad.clone()
    make(list(clones.values())).step()
    for k, v in clones.items():
        out[name + "." + k] = v.detach()

save(os.path.join(os.path.dirname(__file__), "..", "tests", "golden_unet.safetensors"), out,
     {"generator": "scripts/golden_unet.py", "torch": torch.__version__})
print("wrote tests/golden_unet.safetensors with", len(out), "tensors")
