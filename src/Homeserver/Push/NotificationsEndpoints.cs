using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Push;

/// <summary>Spec: Push notifications, <c>GET /notifications</c>: the events that notified the user, newest first, paginated.</summary>
public sealed class NotificationsEndpoints(Authenticator authenticator, Database db, PushActionStore actions, RoomStore rooms, RoomReader reader)
    : IEndpoints
{
    private const int DefaultLimit = 20;
    private const int MaxLimit = 100;

    public void Map(IEndpointRouteBuilder app) => app.MapV3("GET", "notifications", GetAsync);

    private async Task GetAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var before = context.Query("from") is { Length: > 0 } from
            ? long.TryParse(from, out var position) && position > 0 ? position : throw MatrixException.InvalidParam("Invalid 'from' token.")
            : long.MaxValue;
        var limit = context.Query("limit") is { Length: > 0 } limitText
            ? int.TryParse(limitText, out var parsed) && parsed >= 0 ? Math.Min(parsed, MaxLimit) : throw MatrixException.InvalidParam("Invalid 'limit'.")
            : DefaultLimit;
        var only = context.Query("only");
        var rows = await db.ReadAsync(s => actions.NotificationsAsync(s, requester.UserId.Value, before, limit, only.Contains("highlight")),
            context.RequestAborted);

        var notifications = new JsonArray();
        foreach (var row in rows)
        {
            var stored = await db.ReadAsync(s => rooms.GetEventAsync(s, row.EventId), context.RequestAborted);
            if (stored is null)
                continue;
            var room = await reader.RoomAsync(row.RoomId, context.RequestAborted);
            notifications.Add(new JsonObject
            {
                ["actions"] = JsonNode.Parse(row.Actions),
                ["event"] = await reader.ToClientAsync(room, stored, context.RequestAborted),
                // Push rules have no profile tags any more (device-specific rules went); Synapse serves null too.
                ["profile_tag"] = null,
                ["read"] = row.IsRead == 1,
                ["room_id"] = row.RoomId,
                ["ts"] = row.Ts,
            });
        }
        var body = new JsonObject { ["notifications"] = notifications };
        if (rows.Count == limit && rows.Count > 0)
            body["next_token"] = rows[^1].StreamOrdering.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await context.WriteJsonAsync(body);
    }
}
