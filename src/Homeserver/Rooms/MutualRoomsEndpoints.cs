using System.Globalization;
using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>Spec: Mutual rooms, <c>GET /v1/mutual_rooms</c>: rooms both users are joined to, in pages.</summary>
public sealed class MutualRoomsEndpoints(Authenticator authenticator, Database db, RoomStore rooms) : IEndpoints
{
    private const int PageSize = 100;

    public void Map(IEndpointRouteBuilder app) => app.MapV1("GET", "mutual_rooms", MutualRoomsAsync);

    private async Task MutualRoomsAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var other = context.Query("user_id");
        if (other.Length == 0)
            throw MatrixException.InvalidParam("user_id is required.");
        if (!UserId.TryParse(other, out _) || other == requester.UserId.Value)
            throw MatrixException.InvalidParam("user_id must be another user's valid ID.");
        var offset = context.Query("from") is { Length: > 0 } from
            ? int.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : throw MatrixException.InvalidParam("Invalid from token.")
            : 0;
        var (mine, theirs) = await db.ReadAsync(async s => (await rooms.MembershipsAsync(s, requester.UserId.Value), await rooms.MembershipsAsync(s, other)),
            context.RequestAborted);
        var joined = theirs.Where(m => m.Membership == "join").Select(m => m.RoomId).ToHashSet();
        var mutual = mine.Where(m => m.Membership == "join" && joined.Contains(m.RoomId)).Select(m => m.RoomId).Order(StringComparer.Ordinal).ToList();
        var page = mutual.Skip(offset).Take(PageSize).ToList();
        var body = new JsonObject { ["joined"] = new JsonArray(page.Select(r => (JsonNode)r).ToArray()), ["count"] = mutual.Count };
        if (offset + page.Count < mutual.Count)
            body["next_batch"] = (offset + page.Count).ToString(CultureInfo.InvariantCulture);
        await context.WriteJsonAsync(body);
    }
}
