-- enable_saas: turn on SaaS mode for the new location (agency token,
-- POST /saas/enable-saas/{locationId}; the GHL client sends the Version the
-- /saas/ endpoints need). Needs CREATE_LOCATION earlier in the pipeline and
-- the saas/location.write scope. Enabling twice is harmless.
return {
  name = "enable_saas",
  version = "1.0.0",
  description = "enable SaaS mode (v2 by default) for the new location",
  client_fields = {"name", "email"}, -- a job without them is refused at submission
  config_schema = {
    type = "object",
    properties = {
      saas_v2 = {type = "boolean"},
      plan_id = {type = "string", minLength = 1, maxLength = 100},
      price_id = {type = "string", minLength = 1, maxLength = 100},
    },
    additionalProperties = false,
  },

  run = function(ctx)
    local location_id = ctx.outputs.location_id
    if type(location_id) ~= "string" then
      error("no location yet: put CREATE_LOCATION before enable_saas")
    end
    local company_id = ctx.job.company_id
    if type(company_id) ~= "string" then
      error("the job has no GHL company id (is the agency connected?)")
    end
    local body = {
      companyId = company_id,
      isSaaSV2 = ctx.config.saas_v2 ~= false,
      name = ctx.client.name,
      email = ctx.client.email,
      saasPlanId = ctx.config.plan_id,
      priceId = ctx.config.price_id,
    }
    local status, res = ghl.request{method = "POST", path = "/saas/enable-saas/" .. location_id,
                                    json = body, token = "agency"}
    if status ~= 200 and status ~= 201 then ghl.fail("enabling SaaS") end
    log.info("SaaS enabled for " .. location_id .. (body.isSaaSV2 and " (v2)" or ""))
    ctx:set("saas_enabled", true)
  end,
}
