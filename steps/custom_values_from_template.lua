-- custom_values_from_template: set the new location's custom values from
-- templates filled with the client's fields, e.g.
--   {"values": {"Welcome text": "Hi {{client.first_name}}, welcome to {{client.name}}!"}}
-- Placeholders: {{client.<field>}}, {{outputs.<key>}}, {{job.<field>}},
-- {{config.<key>}}; an absent field becomes "" (or config.missing).
-- Idempotent: a value whose name exists already is updated (PUT), not
-- created twice.
local function lookup(ctx, path)
  local v = ctx
  for part in path:gmatch("[^%.]+") do
    if type(v) ~= "table" then return nil end
    v = v[part]
  end
  if type(v) == "table" or v == json.null then return nil end
  return v
end

local function fill(ctx, template)
  return (template:gsub("{{%s*([%w_%.]+)%s*}}", function(path)
    local root = path:match("^(%w+)%.")
    if root ~= "client" and root ~= "outputs" and root ~= "job" and root ~= "config" then
      return nil -- leave unknown placeholders as they are
    end
    local v = lookup(ctx, path)
    if v == nil then return ctx.config.missing or "" end
    return tostring(v)
  end))
end

return {
  name = "custom_values_from_template",
  version = "1.0.0",
  description = "set custom values of the new location from templates with client fields",
  config_schema = {
    type = "object",
    properties = {
      values = {type = "object"},
      missing = {type = "string", maxLength = 200},
    },
    required = {"values"},
    additionalProperties = false,
  },

  run = function(ctx)
    local location_id = ctx.outputs.location_id
    if type(location_id) ~= "string" then
      error("no location yet: put CREATE_LOCATION before custom_values_from_template")
    end
    local base = "/locations/" .. location_id .. "/customValues"
    local status, list = ghl.request{path = base, token = "location"}
    if status ~= 200 then ghl.fail("listing custom values") end
    local existing = {}
    for _, cv in ipairs(list.customValues or {}) do existing[cv.name] = cv.id end

    local names = {}
    for name in pairs(ctx.config.values) do names[#names + 1] = name end
    table.sort(names)
    local set = {}
    for _, name in ipairs(names) do
      local template = ctx.config.values[name]
      if type(template) ~= "string" then
        error(("config.values[%q] must be a string template"):format(name))
      end
      local value = fill(ctx, template)
      local id = existing[name]
      local st
      if id then
        st = ghl.request{method = "PUT", path = base .. "/" .. id, token = "location",
                         json = {name = name, value = value}}
      else
        st = ghl.request{method = "POST", path = base, token = "location",
                         json = {name = name, value = value}}
      end
      if st ~= 200 and st ~= 201 then ghl.fail(("setting custom value %q"):format(name)) end
      set[name] = value
      log.info(("custom value %q %s"):format(name, id and "updated" or "created"))
    end
    ctx:set("custom_values", set)
  end,
}
