-- location_tag: create a tag (config.name, default "client") in the new location.
return {
  name = "location_tag",            -- letters, digits, '_' or '-'
  version = "1.0.0",
  description = "creates a tag in the client's new location",
  config_schema = {                 -- the JSON Schema subset of plugins (core/base/schema.h)
    type = "object",
    properties = {name = {type = "string", minLength = 1, maxLength = 100}},
    additionalProperties = false,
  },
  limits = {instructions = 1000000}, -- optional: this script's own limits

  run = function(ctx)
    local location_id = ctx.outputs.location_id          -- from CREATE_LOCATION
    if not location_id then
      error("no location yet: put CREATE_LOCATION first")  -- permanent failure
    end
    local name = ctx.config.name or "client"
    local status, body, headers = ghl.request{
      method = "POST", path = "/locations/" .. location_id .. "/tags",
      json = {name = name}, token = "location"}           -- yields until GHL answers
    if status == 429 or status >= 500 then
      error({retry = true, message = "GHL answered " .. status})  -- retryable
    elseif status ~= 200 and status ~= 201 then
      ghl.fail("creating tag " .. name)  -- or let the host classify the response
    end
    log.info("tag", body.tag.id, "for", ctx.client.name)  -- into the step's journal details
    ctx:set("tag_id", body.tag.id)                        -- an output for later steps
  end,
}
