using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Spec: Server administration, <c>GET /admin/whois/{userId}</c>: a user's devices and where they were last seen (admins, or
/// the user); also at Synapse's admin API path.
/// </summary>
public sealed class WhoisEndpoints(Authenticator authenticator, Database db, DeviceStore devices, UserStore users, HomeserverConfig config) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "admin/whois/{userId}", WhoisAsync);
        app.MapGet(AdminAuth.Prefix + "/v1/whois/{userId}", WhoisAsync);
    }

    private async Task WhoisAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (!UserId.TryParse(context.Route("userId"), out var userId))
            throw MatrixException.InvalidParam("Invalid user ID.");
        if (!requester.IsAdmin && requester.UserId.Value != userId.Value)
            throw MatrixException.Forbidden("Only server administrators may look up other users.");
        if (userId.Server.Value != config.ServerName || await db.ReadAsync(s => users.GetAsync(s, userId.Value), context.RequestAborted) is null)
            throw MatrixException.NotFound("No such local user.");
        var rows = await db.ReadAsync(s => devices.ListAsync(s, userId.Value), context.RequestAborted);
        var byDevice = new JsonObject();
        foreach (var device in rows)
        {
            var connections = new JsonArray();
            if (device.LastSeenIp is not null)
                connections.Add(new JsonObject
                {
                    ["ip"] = device.LastSeenIp, ["last_seen"] = device.LastSeenTs, ["user_agent"] = device.LastSeenUserAgent ?? "",
                });
            byDevice[device.DeviceId] = new JsonObject { ["sessions"] = new JsonArray(new JsonObject { ["connections"] = connections }) };
        }
        await context.WriteJsonAsync(new JsonObject { ["user_id"] = userId.Value, ["devices"] = byDevice });
    }
}
