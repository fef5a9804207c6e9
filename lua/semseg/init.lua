-- semseg: the Lua library. The C engine (tensors, ops, autograd) comes from
-- semseg.core; this file adds what is clearer written in Lua.
local core = require "semseg.core"
local sg = {}
for k, v in pairs(core) do sg[k] = v end

sg.version = "0.1.0"
sg.device = require "semseg.device"
sg.amp = require "semseg.amp"
sg.autograd = require "semseg.autograd"
sg.gradcheck = sg.autograd.gradcheck
sg.nn = require "semseg.nn"
require "semseg.layers" -- adds the layer modules to sg.nn
sg.optim = require "semseg.optim"
sg.data = require "semseg.augment"
sg.F = require "semseg.functional"
sg.loss = require "semseg.losses"
sg.util = require "semseg.util"
sg.json = require "semseg.json"
sg.safetensors = require "semseg.safetensors"
sg.checkpoint = require "semseg.checkpoint"
sg.models = require "semseg.models"
sg.predict = require "semseg.predict"
sg.metrics = require "semseg.metrics"
sg.train = require "semseg.train"
sg.progress = require "semseg.progress"
sg.plot = require "semseg.plot"
sg.report = require "semseg.report"
sg.experiment = require "semseg.experiment"
for _, name in ipairs{"softmax", "log_softmax", "logsumexp"} do sg[name] = sg.F[name]; sg.Tensor[name] = sg.F[name] end
sg.optim.lr = require "semseg.schedulers"

-- "cpu (oneDNN), cuda (NVIDIA H100 ...)": what this build can run on, for --version and reports
function sg.backends()
  local cpu = sg.nn_functional._dnnl() and "cpu (OpenBLAS, oneDNN)" or "cpu (OpenBLAS)"
  if not sg.cuda.is_built() then return cpu .. "; cuda not built" end
  if sg.cuda.is_available() then return cpu .. ", cuda (" .. sg.cuda.device_name() .. ")" end
  return cpu .. ", cuda (built; no device: " .. sg.cuda.why_unavailable() .. ")"
end

for k, v in pairs(require "semseg.datasets") do sg.data[k] = v end -- datasets and the loader join sg.data

return sg
