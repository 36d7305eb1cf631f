using System.Text.Json.Nodes;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Push;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>What Synapse's admin API shows of a user's data: room memberships, pushers and account data (<c>/_synapse/admin/v1/users/{userId}/...</c>).</summary>
public sealed class AdminUserDataEndpoints(AdminAuth auth, RoomStore rooms, PusherStore pushers, AccountDataStore accountData, Database db) : IEndpoints
{
    private const string User = AdminAuth.Prefix + "/v1/users/{userId}";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(User + "/memberships", MembershipsAsync);
        app.MapGet(User + "/pushers", PushersAsync);
        app.MapGet(User + "/accountdata", AccountDataAsync);
    }

    private async Task<string> TargetAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        return (await auth.ExistingLocalUserAsync(context)).UserId;
    }

    private async Task MembershipsAsync(HttpContext context)
    {
        var userId = await TargetAsync(context);
        var memberships = new JsonObject();
        foreach (var row in (await db.ReadAsync(s => rooms.MembershipsAsync(s, userId), context.RequestAborted)).OrderBy(r => r.RoomId, StringComparer.Ordinal))
            memberships[row.RoomId] = row.Membership;
        await context.WriteJsonAsync(new JsonObject { ["memberships"] = memberships });
    }

    private async Task PushersAsync(HttpContext context)
    {
        var userId = await TargetAsync(context);
        var rows = await db.ReadAsync(s => pushers.ForUserAsync(s, userId), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject
        {
            ["pushers"] = new JsonArray(rows.Select(row => (JsonNode)PusherEndpoints.ToJson(row)).ToArray()),
            ["total"] = rows.Count,
        });
    }

    private async Task AccountDataAsync(HttpContext context)
    {
        var userId = await TargetAsync(context);
        var entries = await db.ReadAsync(s => s.QueryAsync(accountData.ChangedSince(userId, 0, long.MaxValue)), context.RequestAborted);
        var global = new JsonObject();
        var byRoom = new JsonObject();
        foreach (var entry in entries)
        {
            var content = JsonNode.Parse(entry.Content);
            if (entry.RoomId == AccountDataStore.Global)
                global[entry.DataType] = content;
            else
                ((byRoom[entry.RoomId] ??= new JsonObject()) as JsonObject)![entry.DataType] = content;
        }
        await context.WriteJsonAsync(new JsonObject { ["account_data"] = new JsonObject { ["global"] = global, ["rooms"] = byRoom } });
    }
}
