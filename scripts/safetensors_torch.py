# The safetensors format from the PyTorch side, for tests/test_safetensors.lua
# (Debian has no python3-safetensors; this follows the format's specification:
# u64 little-endian header size, JSON header, raw little-endian data).
#   safetensors_torch.py write PATH   writes a file with known tensors
#   safetensors_torch.py check PATH   reads a semseg-written file and prints a digest
import json, struct, sys
import torch

DT = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
      "U8": torch.uint8, "I32": torch.int32, "I64": torch.int64, "BOOL": torch.bool}
NAME = {v: k for k, v in DT.items()}

def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        raw = bytearray(data[8 + n + b:8 + n + e])
        t = torch.frombuffer(raw, dtype=DT[v["dtype"]]) if raw else torch.empty(0, dtype=DT[v["dtype"]])
        out[k] = t.reshape(v["shape"])
    return out, meta

def save(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        t = tensors[k].contiguous()
        flat = t.reshape(-1)
        raw = flat.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[k] = {"dtype": NAME[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

if __name__ != "__main__":
    pass
elif sys.argv[1] == "write":
    save(sys.argv[2], {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4,
                       "h": torch.tensor([1.5, -2.25], dtype=torch.float16),
                       "b": torch.tensor([1.0, 3.0], dtype=torch.bfloat16),
                       "i": torch.tensor([[7, -9]], dtype=torch.int64),
                       "m": torch.tensor([True, False, True])}, {"arch": "unet", "base": "64"})
else:
    t, meta = load(sys.argv[2])
    for k in sorted(t):
        v = t[k]
        print(k, NAME[v.dtype], list(v.shape), "%.6f" % v.double().sum().item())
    print("meta", json.dumps(meta, sort_keys=True))
