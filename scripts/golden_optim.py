# Golden values for tests/test_optim.lua: final parameters after three fixed gradients.
import torch
p0 = [0.5, -1.0, 2.0, 0.25]
grads = [[0.1, -0.2, 0.3, 0.0], [0.05, 0.4, -0.1, 0.2], [-0.3, 0.1, 0.2, -0.05]]
cfgs = {
 "sgd_plain": (torch.optim.SGD, dict(lr=0.1)),
 "sgd_mom": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01, dampening=0.1)),
 "sgd_nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
 "adam": (torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
 "adam_ams": (torch.optim.Adam, dict(lr=0.01, amsgrad=True, betas=(0.8, 0.9))),
 "adamw": (torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
 "rmsprop": (torch.optim.RMSprop, dict(lr=0.01)),
 "rmsprop_cm": (torch.optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.01)),
}
for name, (cls, kw) in cfgs.items():
    p = torch.tensor(p0, dtype=torch.float64, requires_grad=True)
    o = cls([p], **kw)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        o.step()
    print(f'  {name} = {{' + ", ".join("%.17g" % v for v in p.detach().tolist()) + '},')
