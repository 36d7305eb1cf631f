using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.UserDirectory;

/// <summary>
/// Spec: user directory search. Matches the user ID and display name (case-insensitive substring). Searches users
/// who share a room with the searcher or sit in a public room, or every local user with
/// <c>user_directory.search_all_users</c>. Users of other servers are found through those rooms, under the display
/// name and avatar of their member event (as Synapse does).
/// </summary>
public sealed class UserDirectoryEndpoints(
    Authenticator authenticator, JsonBody json, Database db, RoomStore rooms, EventSpine spine, HomeserverConfig config) : IEndpoints
{
    public const int MaxLimit = 50;

    private sealed record Candidate(string UserId, string? DisplayName, string? AvatarUrl);

    /// <summary>A local user's profile fields as stored (JSON values).</summary>
    private sealed record LocalProfileRow(string UserId, string? DisplayNameJson, string? AvatarUrlJson);

    public void Map(IEndpointRouteBuilder app) => app.MapV3("POST", "user_directory/search", SearchAsync);

    private async Task SearchAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var term = body.RequiredString("search_term").Trim();
        var limit = (int)Math.Clamp(body.OptionalInteger("limit") ?? 10, 0, MaxLimit);
        var ct = context.RequestAborted;

        var (sharedRooms, publicRooms) = await VisibleRoomsAsync(requester.UserId.Value, ct);
        var visibleRooms = sharedRooms.Concat(publicRooms).DistinctBy(r => r.RoomId).ToList();
        // As Synapse: the searcher's room mates, and whoever sits in a public room (the searcher too, only there).
        var visible = sharedRooms.SelectMany(r => r.JoinedMembers).Where(u => u != requester.UserId.Value)
            .Concat(publicRooms.SelectMany(r => r.JoinedMembers)).ToHashSet(StringComparer.Ordinal);
        // No local user ID (255 bytes at most) or display name can hold a longer term; SQLite refuses LIKE patterns
        // over 50,000 bytes, so such terms skip the query.
        var local = term.Length > Profile.ProfileService.MaxDisplayNameLength ? [] : (await db.ReadAsync(async s => (await s.QueryAsync<LocalProfileRow>("""
            SELECT u.user_id, d.value_json AS display_name_json, a.value_json AS avatar_url_json FROM users u
            LEFT JOIN profile_fields d ON d.user_id = u.user_id AND d.field = 'displayname'
            LEFT JOIN profile_fields a ON a.user_id = u.user_id AND a.field = 'avatar_url'
            WHERE u.deactivated = 0 AND (LOWER(u.user_id) LIKE @pattern OR LOWER(d.value_json) LIKE @pattern)
            """, new { pattern = "%" + Escape(term.ToLowerInvariant()) + "%" })).ToList(), ct))
            .Where(c => config.UserDirectory.SearchAllUsers || visible.Contains(c.UserId))
            .Select(c => new Candidate(c.UserId, JsonText(c.DisplayNameJson), JsonText(c.AvatarUrlJson)));
        var remote = await RemoteMembersAsync(visibleRooms, ct);

        var matches = local.Concat(remote)
            .Where(c => c.UserId.Contains(term, StringComparison.OrdinalIgnoreCase) || c.DisplayName?.Contains(term, StringComparison.OrdinalIgnoreCase) == true)
            .OrderBy(c => c.UserId, StringComparer.Ordinal)
            .ToList();
        var results = new JsonArray();
        foreach (var (userId, displayName, avatarUrl) in matches.Take(limit))
        {
            var result = new JsonObject { ["user_id"] = userId };
            if (displayName is not null) result["display_name"] = displayName;
            if (avatarUrl is not null) result["avatar_url"] = avatarUrl;
            results.Add(result);
        }
        await context.WriteJsonAsync(new JsonObject { ["results"] = results, ["limited"] = matches.Count > limit });
    }

    /// <summary>
    /// The rooms the user is joined to, and the public ones this server is in: joinable by anyone or world-readable
    /// (Synapse's measure for the directory, whether or not the room is published in the room directory). A room this
    /// server has left shows its state as it was then, so it counts no more.
    /// </summary>
    private async Task<(List<RoomSnapshot> Shared, List<RoomSnapshot> Public)> VisibleRoomsAsync(string userId, CancellationToken ct)
    {
        var (joinedIds, allIds) = await db.ReadAsync(async s => (
            (await rooms.MembershipsAsync(s, userId)).Where(m => m.Membership == "join").Select(m => m.RoomId).ToHashSet(StringComparer.Ordinal),
            await rooms.AllRoomIdsAsync(s)), ct);
        var shared = new List<RoomSnapshot>();
        var open = new List<RoomSnapshot>();
        foreach (var roomId in allIds)
        {
            if (await spine.GetRoomAsync(roomId, ct) is not { } room)
                continue;
            if (joinedIds.Contains(roomId))
                shared.Add(room);
            if (!room.JoinedServers.Contains(config.ServerName))
                continue;
            if ((await spine.GetStateEventAsync(room, StateKey.JoinRules, ct))?.ContentString("join_rule") == "public"
                || (await spine.GetStateEventAsync(room, new StateKey("m.room.history_visibility", ""), ct))?.ContentString("history_visibility") == "world_readable")
                open.Add(room);
        }
        return (shared, open);
    }

    /// <summary>The joined members from other servers, each under the profile of their member event in the first room seen.</summary>
    private async Task<List<Candidate>> RemoteMembersAsync(List<RoomSnapshot> visibleRooms, CancellationToken ct)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var found = new List<Candidate>();
        foreach (var room in visibleRooms)
            foreach (var userId in room.JoinedMembers)
                if (EventSigning.ServerOf(userId) != config.ServerName && seen.Add(userId)
                    && await spine.GetStateEventAsync(room, StateKey.Member(userId), ct) is { } member)
                    found.Add(new Candidate(userId, member.ContentString("displayname"), member.ContentString("avatar_url")));
        return found;
    }

    private static string? JsonText(string? valueJson) =>
        valueJson is null ? null : JsonNode.Parse(valueJson) is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    /// <summary>LIKE wildcards in the term match themselves (the final comparison is done exactly in C#).</summary>
    private static string Escape(string term) => term.Replace("%", "_").Replace("\\", "_");
}
