using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's <c>POST /_synapse/admin/v1/users/{userId}/login</c>: an access token for an admin to act as a local user
/// (<c>valid_until_ms</c> bounds it). It makes no device of the user's, so their device list does not show it; it ends
/// when the admin (or the user) logs out everywhere, or when the user is deactivated.
/// </summary>
public sealed class AdminLoginAsUserEndpoints(AdminAuth auth, AccountService accounts, JsonBody json, TimeProvider clock) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app) => app.MapPost(AdminAuth.Prefix + "/v1/users/{userId}/login", LoginAsync);

    private async Task LoginAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var user = await auth.ExistingLocalUserAsync(context);
        if (user.UserId == admin.UserId.Value)
            throw MatrixException.InvalidParam("Cannot use admin API to login as self.");
        if (user.Deactivated != 0)
            throw MatrixException.InvalidParam("The user is deactivated.");
        var body = await json.ReadObjectAsync(context, optional: true);
        var validUntil = body.OptionalInteger("valid_until_ms");
        if (validUntil is { } until && until <= clock.GetUtcNow().ToUnixTimeMilliseconds())
            throw MatrixException.InvalidParam("valid_until_ms must be in the future.");
        var token = await accounts.IssuePuppetTokenAsync(admin.UserId.Value, user.UserId, validUntil, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["access_token"] = token });
    }
}
