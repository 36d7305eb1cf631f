using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>The parsed body of <c>POST /createRoom</c>.</summary>
public sealed record CreateRoomRequest(
    RoomVersion Version, string? Preset, bool Public, string? Name, string? Topic, IReadOnlyList<string> Invite, bool IsDirect,
    JsonObject CreationContent, IReadOnlyList<(string Type, string StateKey, JsonObject Content)> InitialState, JsonObject? PowerLevelOverride,
    string? AliasName);

/// <summary>
/// <c>createRoom</c>: the events of a new room in the spec's order: create, the creator's join, power levels,
/// canonical alias, the preset's join rules / history visibility / guest access, initial_state, name, topic, invites.
/// </summary>
public sealed class RoomCreation(EventSpine spine, MembershipService memberships, Database db, RoomStore rooms, ILogger<RoomCreation> logger)
{
    public async Task<string> CreateAsync(string creator, CreateRoomRequest request, CancellationToken ct)
    {
        var version = request.Version;
        if (request.AliasName is not null && await db.ReadAsync(s => rooms.ResolveAliasAsync(s, request.AliasName), ct) is not null)
            throw new MatrixException(400, "M_ROOM_IN_USE", "Room alias already taken.");
        var preset = request.Preset ?? (request.Public ? "public_chat" : "private_chat");
        var createContent = (JsonObject)request.CreationContent.DeepClone();
        createContent["room_version"] = version.Id;
        if (!version.ImplicitRoomCreator)
            createContent["creator"] = creator;
        if (version.PrivilegedCreators && preset == "trusted_private_chat" && request.Invite.Count > 0 && !createContent.ContainsKey("additional_creators"))
            createContent["additional_creators"] = new JsonArray(request.Invite.Select(u => (JsonNode)u).ToArray());

        var create = await spine.CreateRoomAsync(version, creator, createContent, ct);
        var roomId = create.Pdu.RoomId;
        await memberships.ChangeAsync(roomId, creator, creator, "join", null, null, ct);
        await SendStateAsync(roomId, creator, "m.room.power_levels", "", PowerLevels(version, creator, preset, request), ct);
        if (request.AliasName is not null)
        {
            if (!await db.WriteAsync(s => rooms.TryCreateAliasAsync(s, request.AliasName, roomId, creator), ct))
                throw new MatrixException(400, "M_ROOM_IN_USE", "Room alias already taken.");
            await SendStateAsync(roomId, creator, "m.room.canonical_alias", "", new JsonObject { ["alias"] = request.AliasName }, ct);
        }

        var initialTypes = request.InitialState.Select(s => (s.Type, s.StateKey)).ToHashSet();
        foreach (var (type, content) in PresetState(preset))
            if (!initialTypes.Contains((type, "")))
                await SendStateAsync(roomId, creator, type, "", content, ct);
        foreach (var (type, stateKey, content) in request.InitialState)
            await SendStateAsync(roomId, creator, type, stateKey, content, ct);
        if (request.Name is not null)
            await SendStateAsync(roomId, creator, "m.room.name", "", new JsonObject { ["name"] = request.Name }, ct);
        if (request.Topic is not null)
            await SendStateAsync(roomId, creator, "m.room.topic", "", TopicContent(request.Topic), ct);
        foreach (var invitee in request.Invite)
            try
            {
                await memberships.ChangeAsync(roomId, creator, invitee, "invite", null,
                    request.IsDirect ? new JsonObject { ["is_direct"] = true } : null, ct);
            }
            catch (MatrixException e) when (e.Errcode == "M_INVITE_BLOCKED")
            {
                // Spec (invite permission): the room is still created; only that invite is not.
            }
            catch (MatrixException e) when (EventSigning.ServerOf(invitee) != EventSigning.ServerOf(creator))
            {
                // The invitee's server refused (a room version it lacks, an unknown user) or could not be reached: as
                // with a blocked invite, the room and the other invites stand rather than half a room and an error.
                logger.LogWarning("createRoom {RoomId}: the invite of {Invitee} failed: {Error}", roomId, invitee, e.Message);
            }
        if (request.Public)
            await db.WriteAsync(s => rooms.SetPublicAsync(s, roomId, true), ct);
        return roomId;
    }

    /// <summary>The v1.15 topic format: plain text plus an <c>m.topic</c> block.</summary>
    public static JsonObject TopicContent(string topic) => new()
    {
        ["topic"] = topic,
        ["m.topic"] = new JsonObject { ["m.text"] = new JsonArray(new JsonObject { ["body"] = topic, ["mimetype"] = "text/plain" }) },
    };

    private Task SendStateAsync(string roomId, string sender, string type, string stateKey, JsonObject content, CancellationToken ct) =>
        spine.SendAsync(roomId, new NewEvent(type, stateKey, sender, content), ct);

    private static IEnumerable<(string Type, JsonObject Content)> PresetState(string preset)
    {
        yield return ("m.room.join_rules", new JsonObject { ["join_rule"] = preset == "public_chat" ? "public" : "invite" });
        yield return ("m.room.history_visibility", new JsonObject { ["history_visibility"] = "shared" });
        // public_chat's "forbidden" is what no m.room.guest_access means (spec): as Synapse, that room gets no such event.
        if (preset != "public_chat")
            yield return ("m.room.guest_access", new JsonObject { ["guest_access"] = "can_join" });
    }

    /// <summary>Synapse's defaults (creator 100; invitees too in trusted private chats; invites by anyone in private chats), overridden key by key.</summary>
    private static JsonObject PowerLevels(RoomVersion version, string creator, string preset, CreateRoomRequest request)
    {
        var users = new JsonObject();
        if (!version.PrivilegedCreators)
            users[creator] = 100;
        if (preset == "trusted_private_chat" && !version.PrivilegedCreators)
            foreach (var invitee in request.Invite)
                users[invitee] = 100;
        var levels = new JsonObject
        {
            ["users"] = users,
            ["users_default"] = 0,
            ["events"] = new JsonObject
            {
                ["m.room.name"] = 50, ["m.room.power_levels"] = 100, ["m.room.history_visibility"] = 100,
                ["m.room.canonical_alias"] = 50, ["m.room.avatar"] = 50, ["m.room.tombstone"] = 100,
                ["m.room.server_acl"] = 100, ["m.room.encryption"] = 100,
            },
            ["events_default"] = 0,
            ["state_default"] = 50,
            ["ban"] = 50,
            ["kick"] = 50,
            ["redact"] = 50,
            // As Synapse's presets: in private chats any member may invite; in public ones calls need moderators.
            ["invite"] = preset is "private_chat" or "trusted_private_chat" ? 0 : 50,
            ["historical"] = 100,
        };
        if (preset == "public_chat")
            levels["events"]!["m.call.invite"] = 50;
        if (request.PowerLevelOverride is { } overrides)
            foreach (var (key, value) in overrides)
                levels[key] = value?.DeepClone();
        return levels;
    }

    /// <summary>Parses and checks the request body (400 for anything malformed, before any event is created).</summary>
    public static CreateRoomRequest ParseRequest(JsonElement body, string serverName, RoomVersion defaultVersion)
    {
        var versionId = body.OptionalString("room_version");
        var version = versionId is null ? defaultVersion : RoomVersions.Find(versionId)
            ?? throw new MatrixException(400, "M_UNSUPPORTED_ROOM_VERSION", $"Room version '{versionId}' is not supported.");
        var visibility = body.OptionalString("visibility") ?? "private";
        if (visibility is not ("public" or "private"))
            throw MatrixException.InvalidParam("visibility must be 'public' or 'private'.");
        var preset = body.OptionalString("preset");
        if (preset is not (null or "private_chat" or "trusted_private_chat" or "public_chat"))
            throw MatrixException.InvalidParam($"Unknown preset '{preset}'.");
        var invite = body.TryGetProperty("invite", out _) ? body.RequiredStringArray("invite") : [];
        foreach (var user in invite)
            if (!UserId.TryParse(user, out _))
                throw MatrixException.InvalidParam($"'{user}' is not a user ID.");
        var initialState = new List<(string, string, JsonObject)>();
        if (body.TryGetProperty("initial_state", out var states))
        {
            if (states.ValueKind != JsonValueKind.Array)
                throw MatrixException.BadJson("initial_state must be an array.");
            foreach (var state in states.EnumerateArray())
            {
                if (state.ValueKind != JsonValueKind.Object || state.OptionalObject("content") is not { } content)
                    throw MatrixException.BadJson("initial_state entries need type and content.");
                initialState.Add((state.RequiredString("type"), state.OptionalString("state_key") ?? "", ToCanonicalObject(content)));
            }
        }
        var aliasName = body.OptionalString("room_alias_name");
        if (aliasName is not null && (aliasName.Length == 0 || aliasName.Contains(':') || aliasName.Any(char.IsWhiteSpace)))
            throw new MatrixException(400, "M_INVALID_PARAM", "room_alias_name must be a localpart without ':' or spaces.");
        return new CreateRoomRequest(
            version, preset, visibility == "public", body.OptionalString("name"), body.OptionalString("topic"), invite,
            body.OptionalBool("is_direct") ?? false,
            body.OptionalObject("creation_content") is { } creation ? ToCanonicalObject(creation) : [],
            initialState,
            body.OptionalObject("power_level_content_override") is { } overrides ? ToCanonicalObject(overrides) : null,
            aliasName is null ? null : $"#{aliasName}:{serverName}");
    }

    /// <summary>
    /// Before version 12 the creator's power is an entry in <c>users</c>: an override of <c>users</c> that leaves them out
    /// would leave the room half made (the rest of the initial state refused), so it is refused first, as Synapse does.
    /// </summary>
    public static void CheckCreatorKeepsPower(CreateRoomRequest request, string creator)
    {
        if (!request.Version.PrivilegedCreators && request.PowerLevelOverride?["users"] is JsonObject users && !users.ContainsKey(creator))
            throw MatrixException.InvalidParam($"Not a valid power_level_content_override: 'users' does not contain the creator {creator}.");
    }

    /// <summary>Client JSON as an event content object, refusing what canonical JSON forbids (floats, huge integers).</summary>
    public static JsonObject ToCanonicalObject(JsonElement element)
    {
        try
        {
            return StrictJsonParser.ParseObject(System.Text.Encoding.UTF8.GetBytes(element.GetRawText()));
        }
        catch (CanonicalJsonException e)
        {
            throw MatrixException.BadJson(e.Message);
        }
    }
}
