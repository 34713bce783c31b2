-- tag_new_client: make the client a contact of the new location and tag it.
-- Needs CREATE_LOCATION earlier in the pipeline (outputs.location_id).
-- /contacts/upsert matches the contact by email (then phone), so a retry
-- after a crash updates the same contact instead of creating a second one.
return {
  name = "tag_new_client",
  version = "1.0.0",
  description = "upsert the client as a contact of the new location, with tags",
  client_fields = {"email"},        -- a job without them is refused at submission
  config_schema = {
    type = "object",
    properties = {
      tags = {type = "array", items = {type = "string", minLength = 1, maxLength = 100},
              maxItems = 50},
      include_client_tags = {type = "boolean"},
    },
    additionalProperties = false,
  },

  run = function(ctx)
    local location_id = ctx.outputs.location_id
    if type(location_id) ~= "string" then
      error("no location yet: put CREATE_LOCATION before tag_new_client")
    end
    local c = ctx.client
    local tags = {}
    for _, t in ipairs(ctx.config.tags or {"new-client"}) do tags[#tags + 1] = t end
    if ctx.config.include_client_tags ~= false then
      for _, t in ipairs(c.tags or {}) do tags[#tags + 1] = t end
    end
    local body = {
      locationId = location_id,
      firstName = c.first_name, lastName = c.last_name,
      email = c.email, phone = c.phone,
      source = "ghl-agent",
    }
    if #tags > 0 then body.tags = tags end

    local status, res = ghl.request{method = "POST", path = "/contacts/upsert",
                                    json = body, token = "location"}
    if status ~= 200 and status ~= 201 then
      ghl.fail("upserting the client's contact")
    end
    log.info(("contact %s %s, tags: %s"):format(res.contact.id,
             res.new and "created" or "updated", table.concat(tags, ", ")))
    ctx:set("contact_id", res.contact.id)
  end,
}
