using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.RoomDirectory;

/// <summary>
/// Spec: Room summaries, <c>GET /v1/room_summary/{roomIdOrAlias}</c>: a room's summary for whoever may see it from
/// outside (anyone, even unauthenticated, for public, knockable and world-readable rooms); rooms this server is not in
/// are asked of the <c>via</c> servers (or the alias's) through their federation hierarchy.
/// </summary>
public sealed class RoomSummaryEndpoints(
    Authenticator authenticator, EventSpine spine, RoomReader reader, RoomPeeking peeking, AliasResolver aliases, FederationClient federation)
    : IEndpoints
{
    public void Map(IEndpointRouteBuilder app) => app.MapV1("GET", "room_summary/{roomIdOrAlias}", SummaryAsync);

    private async Task SummaryAsync(HttpContext context)
    {
        var requester = await authenticator.TryAuthenticateAsync(context);
        var ct = context.RequestAborted;
        var target = context.Route("roomIdOrAlias");
        string roomId;
        var via = context.Request.Query["via"].Where(v => v is not null).Select(v => v!).ToList();
        if (target.StartsWith('#'))
        {
            if (!RoomAlias.IsValid(target))
                throw MatrixException.InvalidParam("Invalid room alias.");
            (roomId, var servers) = await aliases.ResolveAsync(target, ct);
            via.AddRange(servers);
        }
        else if (RoomId.TryParse(target, out _))
            roomId = target;
        else
            throw MatrixException.InvalidParam("Expected a room ID or alias.");

        // Members, invitees and knockers see the summary; a departed or banned user only as any outsider would.
        if (await spine.GetRoomAsync(roomId, ct) is { } room && await reader.MembershipAsync(room, requester?.UserId.Value ?? "", ct) is var membership
            && (membership is "join" or "invite" or "knock" || (requester is null ? await peeking.IsOpenAsync(room, ct, includeRestricted: false)
                : await peeking.UserMayPeekAsync(room, requester.UserId.Value, ct))))
        {
            var summary = await peeking.DetailedSummaryAsync(room, ct);
            if (requester is not null && membership is not null)
                summary["membership"] = membership;
            await context.WriteJsonAsync(summary);
            return;
        }
        await context.WriteJsonAsync(await RemoteSummaryAsync(roomId, via, ct) ?? throw MatrixException.NotFound("Room not found, or not visible to you."));
    }

    /// <summary>The room's entry in another server's federation hierarchy (which lists only rooms open to anyone).</summary>
    private async Task<JsonObject?> RemoteSummaryAsync(string roomId, List<string> via, CancellationToken ct)
    {
        foreach (var server in via.Distinct().Where(s => s != federation.ServerName).Take(3))
            try
            {
                if (await federation.SendAsync(HttpMethod.Get, server, $"/_matrix/federation/v1/hierarchy/{Uri.EscapeDataString(roomId)}", null, ct)
                    is JsonObject { } answer && answer["room"] is JsonObject room && room["room_id"]?.GetValue<string>() == roomId)
                {
                    room.Remove("children_state");
                    return (JsonObject)room.DeepClone();
                }
            }
            catch (FederationException)
            {
            }
        return null;
    }
}
