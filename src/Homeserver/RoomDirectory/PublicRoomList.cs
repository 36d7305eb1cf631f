using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.RoomDirectory;

/// <summary>
/// A page request of the room directory: limit, <c>since</c> token (<c>p&lt;offset&gt;</c>), search term, and which
/// list: the main one, one application service network's (<c>third_party_instance_id</c>), or all (<c>include_all_networks</c>).
/// </summary>
public sealed record PublicRoomQuery(int? Limit, string? Since, string? Search, AppServiceNetwork? Network = null, bool AllNetworks = false)
{
    public static PublicRoomQuery FromQuery(HttpContext context) => new(
        context.Query("limit") is { Length: > 0 } l ? int.TryParse(l, out var n) ? n : throw MatrixException.InvalidParam("Invalid limit.") : null,
        context.Query("since") is { Length: > 0 } s ? s : null,
        null);

    public static async Task<PublicRoomQuery> FromBodyAsync(HttpContext context, Authenticator? authenticator, JsonBody json)
    {
        if (authenticator is not null)
            await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context, optional: true);
        var allNetworks = body.OptionalBool("include_all_networks") ?? false;
        var instanceId = body.OptionalString("third_party_instance_id");
        if (allNetworks && instanceId is not null)
            throw MatrixException.InvalidParam("Can't use include_all_networks with an explicit network.");
        return new((int?)body.OptionalInteger("limit"), body.OptionalString("since"), body.OptionalObject("filter")?.OptionalString("generic_search_term"),
            instanceId is null ? null : AppServiceNetwork.Parse(instanceId), allNetworks);
    }

    public JsonObject ToJson()
    {
        var body = new JsonObject();
        if (Limit is not null) body["limit"] = Limit;
        if (Since is not null) body["since"] = Since;
        if (Search is not null) body["filter"] = new JsonObject { ["generic_search_term"] = Search };
        if (Network is not null) body["third_party_instance_id"] = Network.InstanceId;
        if (AllNetworks) body["include_all_networks"] = true;
        return body;
    }
}

/// <summary>The rooms published in this server's directory, served to clients and to other servers, and other servers' lists.</summary>
public sealed class PublicRoomList(Database db, RoomStore rooms, EventSpine spine, FederationClient federation, HomeserverConfig config)
{
    public const int MaxLimit = 500;

    public async Task<JsonObject> ListAsync(PublicRoomQuery query, CancellationToken ct)
    {
        var offset = query.Since is null ? 0
            : query.Since.StartsWith('p') && int.TryParse(query.Since[1..], out var o) && o >= 0 ? o : throw MatrixException.InvalidParam("Invalid since token.");
        var take = Math.Clamp(query.Limit ?? 100, 0, MaxLimit);
        var entries = new List<JsonObject>();
        foreach (var roomId in await db.ReadAsync(s => rooms.PublicRoomsAsync(s, query.Network, query.AllNetworks), ct))
            if (await spine.GetRoomAsync(roomId, ct) is { } room && await SummaryAsync(room, ct) is var entry && Listed(entry) && Matches(entry, query.Search))
                entries.Add(entry);
        entries = entries.OrderByDescending(e => e["num_joined_members"]!.GetValue<int>()).ThenBy(e => e["room_id"]!.GetValue<string>(), StringComparer.Ordinal).ToList();
        var response = new JsonObject
        {
            ["chunk"] = new JsonArray(entries.Skip(offset).Take(take).Select(e => (JsonNode)e).ToArray()),
            ["total_room_count_estimate"] = entries.Count,
        };
        if (offset + take < entries.Count)
            response["next_batch"] = $"p{offset + take}";
        if (offset > 0)
            response["prev_batch"] = $"p{Math.Max(0, offset - take)}";
        return response;
    }

    /// <summary>Another server's directory (federation <c>publicRooms</c>), passed through as it answered.</summary>
    public async Task<JsonObject> RemoteAsync(string server, PublicRoomQuery query, CancellationToken ct)
    {
        if (!ServerName.TryParse(server, out _))
            throw MatrixException.InvalidParam("Invalid server name.");
        if (!config.Federation.Enabled)
            throw MatrixException.NotFound("Federation is switched off.");
        try
        {
            return await federation.SendAsync(HttpMethod.Post, server, "/_matrix/federation/v1/publicRooms", query.ToJson(), ct) as JsonObject
                ?? throw new MatrixException(502, "M_UNKNOWN", "The server gave an invalid answer.");
        }
        catch (FederationException e)
        {
            throw new MatrixException(502, "M_UNKNOWN", $"Could not fetch the room directory of {server}: {e.Message}");
        }
    }

    /// <summary>
    /// A published room is listed while someone outside could do something with it, as Synapse lists: join it (public),
    /// ask to (knock rules), or read it (world-readable history). An invite-only room stays off the list.
    /// </summary>
    private static bool Listed(JsonObject entry) =>
        entry["join_rule"]!.GetValue<string>() is "public" or "knock" or "knock_restricted" || entry["world_readable"]!.GetValue<bool>();

    private static bool Matches(JsonObject entry, string? search) =>
        string.IsNullOrEmpty(search) || new[] { "name", "topic", "canonical_alias" }.Any(field =>
            entry[field]?.GetValue<string>().Contains(search, StringComparison.OrdinalIgnoreCase) == true);

    /// <summary>A room's summary (directory entry): name, topic, alias, avatar, member count, join rule, type.</summary>
    public async Task<JsonObject> SummaryAsync(RoomSnapshot room, CancellationToken ct)
    {
        async Task<string?> Content(string type, string field) =>
            (await spine.GetStateEventAsync(room, new StateKey(type, ""), ct))?.ContentString(field);
        var entry = new JsonObject
        {
            ["room_id"] = room.RoomId,
            ["num_joined_members"] = room.JoinedMembers.Count,
            ["world_readable"] = await Content("m.room.history_visibility", "history_visibility") == "world_readable",
            ["guest_can_join"] = await Content("m.room.guest_access", "guest_access") == "can_join",
            ["join_rule"] = await Content("m.room.join_rules", "join_rule") ?? "invite",
        };
        foreach (var (type, field, name) in new[]
                 {
                     ("m.room.name", "name", "name"), ("m.room.topic", "topic", "topic"), ("m.room.canonical_alias", "alias", "canonical_alias"),
                     ("m.room.avatar", "url", "avatar_url"), ("m.room.create", "type", "room_type"),
                 })
            if (await Content(type, field) is { } value)
                entry[name] = value;
        return entry;
    }
}
