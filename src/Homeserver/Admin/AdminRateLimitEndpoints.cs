using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's <c>/_synapse/admin/v1/users/{userId}/override_ratelimit</c>: a user's own request rate instead of the
/// server's <c>rate_limits.client_requests</c> (a bridge's bot, an integration), or none at all when both numbers are 0.
/// </summary>
public sealed class AdminRateLimitEndpoints(AdminAuth auth, UserStore users, Database db, JsonBody json, ILogger<AdminRateLimitEndpoints> logger)
    : IEndpoints
{
    private const string Path = AdminAuth.Prefix + "/v1/users/{userId}/override_ratelimit";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(Path, GetAsync);
        app.MapPost(Path, SetAsync);
        app.MapDelete(Path, DeleteAsync);
    }

    private async Task GetAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var user = await auth.ExistingLocalUserAsync(context);
        await context.WriteJsonAsync(user.RatelimitPerSecond is { } perSecond
            ? Override(perSecond, user.RatelimitBurst ?? 0)
            : new JsonObject());
    }

    private async Task SetAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var user = await auth.ExistingLocalUserAsync(context);
        var body = await json.ReadObjectAsync(context, optional: true);
        var perSecond = NonNegative(body, "messages_per_second");
        var burst = NonNegative(body, "burst_count");
        await db.WriteAsync(s => users.SetRateLimitAsync(s, user.UserId, perSecond, burst), context.RequestAborted);
        logger.LogWarning("{Admin} set the rate limit of {UserId} to {PerSecond}/s, burst {Burst}", admin.UserId.Value, user.UserId, perSecond, burst);
        await context.WriteJsonAsync(Override(perSecond, burst));
    }

    private async Task DeleteAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var user = await auth.ExistingLocalUserAsync(context);
        await db.WriteAsync(s => users.SetRateLimitAsync(s, user.UserId, null, null), context.RequestAborted);
        logger.LogWarning("{Admin} removed the rate limit override of {UserId}", admin.UserId.Value, user.UserId);
        await context.WriteJsonAsync(new JsonObject());
    }

    private static JsonObject Override(long perSecond, long burst) => new() { ["messages_per_second"] = perSecond, ["burst_count"] = burst };

    private static long NonNegative(JsonElement body, string name) => body.TryGetProperty(name, out var value)
        ? value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number) && number >= 0
            ? number
            : throw MatrixException.InvalidParam($"{name} must be a positive integer.")
        : 0;
}
