-- semseg: the Lua library. The C engine (tensors, ops, autograd) comes from
-- semseg.core; this file adds the framework written in Lua (lua/semseg/) and then the
-- application built on it (lua/semseg_app/: training loop, prediction, plots, reports,
-- experiments), so that sg.train, sg.predict ... are there as soon as semseg is.
local core = require "semseg.core"
local sg = {}
for k, v in pairs(core) do sg[k] = v end
sg.nn_functional = nil -- its C ops are in sg.F, with the Lua ones

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
sg.metrics = require "semseg.metrics"
for _, name in ipairs{"softmax", "log_softmax", "logsumexp"} do sg[name] = sg.F[name]; sg.Tensor[name] = sg.F[name] end
sg.optim.lr = require "semseg.schedulers"

-- "cpu (oneDNN), cuda (NVIDIA H100 ...)": what this build can run on, for --version and reports
function sg.backends()
  local cpu = sg.F._dnnl() and "cpu (OpenBLAS, oneDNN)" or "cpu (OpenBLAS)"
  if not sg.cuda.is_built() then return cpu .. "; cuda not built" end
  if sg.cuda.is_available() then return cpu .. ", cuda (" .. sg.cuda.device_name() .. ")" end
  return cpu .. ", cuda (built; no device: " .. sg.cuda.why_unavailable() .. ")"
end

for k, v in pairs(require "semseg.datasets") do sg.data[k] = v end -- datasets and the loader join sg.data

-- the application (lua/semseg_app); none of the framework modules above depends on these
sg.progress = require "semseg_app.progress"
sg.plot = require "semseg_app.plot"
sg.report = require "semseg_app.report"
sg.train = require "semseg_app.train"
sg.predict = require "semseg_app.predict"
sg.experiment = require "semseg_app.experiment"

return sg
