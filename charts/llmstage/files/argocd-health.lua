-- Argo CD health check for llmstage.io/LLMService
-- (argocd-cm: resource.customizations.health.llmstage.io_LLMService).
--
-- Reads the status the way Flux's kstatus does, so both tools agree:
--   spec change not yet observed (observedGeneration /= generation)  -> Progressing
--   Stalled=True (invalid spec, unschedulable, missing Secret, ...)  -> Degraded
--   runtime cutover under way (status.cutover.phase)                 -> Progressing
--   Reconciling=True                                                 -> Progressing
--   Ready=True                                                       -> Healthy
--   anything else (Ready False or Unknown, no conditions yet)        -> Progressing
-- Only Stalled degrades the Application: a model that is still downloading is not a failure.

local function text(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return condition.reason or condition.type
end

local hs = { status = "Progressing", message = "Waiting for the llmstage operator to report status" }
if obj.status == nil then
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if observed == nil or (generation ~= nil and observed ~= generation) then
  hs.message = "Waiting for the llmstage operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    conditions[condition.type] = condition
  end
end

local stalled = conditions["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  return { status = "Degraded", message = text(stalled) }
end

local cutover = obj.status.cutover
if cutover ~= nil and cutover.phase ~= nil then
  hs.message = "Runtime cutover " .. tostring(cutover.from) .. " -> " .. tostring(cutover.to) .. ": " .. cutover.phase
  if cutover.message ~= nil and cutover.message ~= "" then
    hs.message = hs.message .. " (" .. cutover.message .. ")"
  end
  return hs
end

local reconciling = conditions["Reconciling"]
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = text(reconciling)
  return hs
end

local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  return { status = "Healthy", message = text(ready) }
end
if ready ~= nil then
  hs.message = text(ready)
end
return hs
