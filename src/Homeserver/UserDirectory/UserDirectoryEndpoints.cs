using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.UserDirectory;

/// <summary>
/// Spec: user directory search. Matches the user ID and display name (case-insensitive substring). Searches users
/// who share a room with the searcher or sit in a public room, or everyone with <c>user_directory.search_all_users</c>.
/// </summary>
public sealed class UserDirectoryEndpoints(
    Authenticator authenticator, JsonBody json, Database db, RoomStore rooms, EventSpine spine, RoomReader reader, HomeserverConfig config) : IEndpoints
{
    public const int MaxLimit = 50;

    private sealed record Candidate(string UserId, string? DisplayName, string? AvatarUrl);

    public void Map(IEndpointRouteBuilder app) => app.MapV3("POST", "user_directory/search", SearchAsync);

    private async Task SearchAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var term = body.RequiredString("search_term").Trim();
        var limit = (int)Math.Clamp(body.OptionalInteger("limit") ?? 10, 0, MaxLimit);
        var ct = context.RequestAborted;

        IEnumerable<Candidate> candidates = await db.ReadAsync(async s => (await s.QueryAsync<Candidate>("""
            SELECT u.user_id, d.value_json AS display_name, a.value_json AS avatar_url FROM users u
            LEFT JOIN profile_fields d ON d.user_id = u.user_id AND d.field = 'displayname'
            LEFT JOIN profile_fields a ON a.user_id = u.user_id AND a.field = 'avatar_url'
            WHERE u.deactivated = 0 AND (LOWER(u.user_id) LIKE @pattern OR LOWER(d.value_json) LIKE @pattern)
            ORDER BY u.user_id
            """, new { pattern = "%" + Escape(term.ToLowerInvariant()) + "%" })).ToList(), ct);
        if (!config.UserDirectory.SearchAllUsers)
        {
            var visible = await reader.UsersSharingRoomsAsync(requester.UserId.Value, ct);
            foreach (var roomId in await db.ReadAsync(s => rooms.PublicRoomsAsync(s), ct))
                if (await spine.GetRoomAsync(roomId, ct) is { } room)
                    foreach (var key in room.State.Keys.Where(k => k.Type == "m.room.member"))
                        if ((await spine.GetStateEventAsync(room, key, ct))?.Membership == "join")
                            visible.Add(key.Key);
            candidates = candidates.Where(c => visible.Contains(c.UserId));
        }

        var matches = candidates.Select(c => (c.UserId, DisplayName: JsonText(c.DisplayName), AvatarUrl: JsonText(c.AvatarUrl)))
            .Where(c => c.UserId.Contains(term, StringComparison.OrdinalIgnoreCase) || c.DisplayName?.Contains(term, StringComparison.OrdinalIgnoreCase) == true)
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

    private static string? JsonText(string? valueJson) =>
        valueJson is null ? null : JsonNode.Parse(valueJson) is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    /// <summary>LIKE wildcards in the term match themselves (the final comparison is done exactly in C#).</summary>
    private static string Escape(string term) => term.Replace("%", "_").Replace("\\", "_");
}
