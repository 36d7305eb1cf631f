using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Admin;

/// <summary>Synapse's admin API for registration tokens (<c>/_synapse/admin/v1/registration_tokens</c>), for server admins.</summary>
public sealed class RegistrationTokenAdminEndpoints(RegistrationTokenService tokens, Authenticator authenticator, JsonBody json, TimeProvider clock) : IEndpoints
{
    private const string Prefix = "/_synapse/admin/v1/registration_tokens";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(Prefix, ListAsync);
        app.MapPost(Prefix + "/new", CreateAsync);
        app.MapGet(Prefix + "/{token}", GetAsync);
        app.MapPut(Prefix + "/{token}", UpdateAsync);
        app.MapDelete(Prefix + "/{token}", DeleteAsync);
    }

    private async Task RequireAdminAsync(HttpContext context)
    {
        if (!(await authenticator.AuthenticateAsync(context)).IsAdmin)
            throw MatrixException.Forbidden("You are not a server admin.");
    }

    private async Task ListAsync(HttpContext context)
    {
        await RequireAdminAsync(context);
        var valid = context.Query("valid");
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var rows = (await tokens.ListAsync(context.RequestAborted))
            .Where(row => valid switch { "true" => row.IsUsable(now), "false" => !row.IsUsable(now), _ => true });
        await context.WriteJsonAsync(new JsonObject { ["registration_tokens"] = new JsonArray(rows.Select(ToJson).ToArray<JsonNode?>()) });
    }

    private async Task CreateAsync(HttpContext context)
    {
        await RequireAdminAsync(context);
        var body = await json.ReadObjectAsync(context, optional: true);
        var row = await tokens.CreateAsync(body.OptionalString("token"), body.OptionalInteger("length") ?? 16,
            body.OptionalInteger("uses_allowed"), body.OptionalInteger("expiry_time"), context.RequestAborted);
        await context.WriteJsonAsync(ToJson(row));
    }

    private async Task GetAsync(HttpContext context)
    {
        await RequireAdminAsync(context);
        await context.WriteJsonAsync(ToJson(await tokens.GetAsync(context.Route("token"), context.RequestAborted)));
    }

    private async Task UpdateAsync(HttpContext context)
    {
        await RequireAdminAsync(context);
        var token = context.Route("token");
        var body = await json.ReadObjectAsync(context);
        var current = await tokens.GetAsync(token, context.RequestAborted);
        var usesAllowed = body.TryGetProperty("uses_allowed", out _) ? body.OptionalInteger("uses_allowed") : current.UsesAllowed;
        var expiryTime = body.TryGetProperty("expiry_time", out _) ? body.OptionalInteger("expiry_time") : current.ExpiryTime;
        await context.WriteJsonAsync(ToJson(await tokens.UpdateAsync(token, usesAllowed, expiryTime, context.RequestAborted)));
    }

    private async Task DeleteAsync(HttpContext context)
    {
        await RequireAdminAsync(context);
        await tokens.DeleteAsync(context.Route("token"), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private static JsonObject ToJson(RegistrationTokenRow row) => new()
    {
        ["token"] = row.Token,
        ["uses_allowed"] = row.UsesAllowed,
        ["pending"] = row.Pending,
        ["completed"] = row.Completed,
        ["expiry_time"] = row.ExpiryTime,
    };
}
