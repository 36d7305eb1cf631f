using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Events;

/// <summary>Checks an event against its room version's PDU format and the spec's size limits.</summary>
public static class PduParser
{
    public const int MaxPduBytes = 65536;
    public const int MaxIdentifierBytes = 255;
    /// <summary>Synapse's bounds on graph fan-out; nothing legitimate comes close.</summary>
    public const int MaxPrevEvents = 20;
    public const int MaxAuthEvents = 10;

    /// <summary>
    /// Parses an event received as bytes: strict canonical JSON from v6, while v1-v5 events may hold floats and
    /// out-of-range integers. Duplicate keys, invalid UTF-8 and excessive nesting are refused in every version.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, RoomVersion version, out Pdu pdu, out string error)
    {
        pdu = null!;
        if (utf8.Length > MaxPduBytes * 2)
            return Fail("event is far larger than the PDU size limit", out error);
        try
        {
            return TryParse(StrictJsonParser.ParseObject(utf8, lenientNumbers: !version.StrictCanonicalJson), version, out pdu, out error);
        }
        catch (CanonicalJsonException e)
        {
            return Fail(e.Message, out error);
        }
    }

    /// <summary>
    /// Checks an event that arrived inside another JSON document (a transaction, a send_join answer): it is re-read
    /// under the room version's strict JSON rules first, as if it had arrived as bytes on its own.
    /// </summary>
    public static bool TryParseUntrusted(JsonObject json, RoomVersion version, out Pdu pdu, out string error)
    {
        pdu = null!;
        try
        {
            return TryParse(CanonicalJson.Encode(json), version, out pdu, out error);
        }
        catch (CanonicalJsonException e)
        {
            return Fail(e.Message, out error);
        }
    }

    /// <summary>
    /// Checks the event format. <paramref name="trustedEventId"/> is the ID the server stored the event under, which
    /// skips recomputing the reference hash and the size when loading events it already checked.
    /// </summary>
    public static bool TryParse(JsonObject json, RoomVersion version, out Pdu pdu, out string error, string? trustedEventId = null)
    {
        pdu = null!;
        if (json.ContainsKey("unsigned"))
        {
            json = (JsonObject)json.DeepClone();
            json.Remove("unsigned");
        }
        // A stored event was measured when it was received; encoding it again would also build its whole JSON tree.
        if (trustedEventId is null)
            try
            {
                if (CanonicalJson.Encode(json).Length > MaxPduBytes)
                    return Fail($"event is larger than {MaxPduBytes} bytes", out error);
            }
            catch (CanonicalJsonException e)
            {
                return Fail(e.Message, out error);
            }

        if (!TryString(json, "type", out var type) || !TryString(json, "sender", out var sender))
            return Fail("type and sender must be strings", out error);
        if (Bytes(type) > MaxIdentifierBytes)
            return Fail("type is longer than 255 bytes", out error);
        if (!UserId.TryParse(sender, out _))
            return Fail("sender is not a valid user ID", out error);
        string? stateKey = null;
        if (json.ContainsKey("state_key") && (!TryString(json, "state_key", out stateKey) || Bytes(stateKey) > MaxIdentifierBytes))
            return Fail("state_key must be a string of at most 255 bytes", out error);
        if (!TryInteger(json, "depth", out var depth) || depth < 0)
            return Fail("depth must be a non-negative integer", out error);
        if (!TryInteger(json, "origin_server_ts", out var originServerTs))
            return Fail("origin_server_ts must be an integer", out error);
        if (json["content"] is not JsonObject content)
            return Fail("content must be an object", out error);
        if (json["hashes"] is not JsonObject hashes || !TryString(hashes, "sha256", out _))
            return Fail("hashes.sha256 must be a string", out error);
        if (!ValidSignatures(json["signatures"]))
            return Fail("signatures must map server names to objects of strings", out error);
        if (!TryEventReferences(json, "prev_events", version, out var prevEvents) || prevEvents.Count > MaxPrevEvents)
            return Fail("prev_events is malformed or too long", out error);
        if (!TryEventReferences(json, "auth_events", version, out var authEvents) || authEvents.Count > MaxAuthEvents)
            return Fail("auth_events is malformed or too long", out error);

        var isCreate = type == "m.room.create" && stateKey == "";
        string eventId;
        if (version.EventIdFormat == EventIdFormat.ServerChosen)
        {
            if (!TryString(json, "event_id", out eventId) || !IsServerChosenEventId(eventId))
                return Fail("event_id must be $opaque:server", out error);
        }
        else
            eventId = trustedEventId ?? EventHashes.ComputeEventId(json, version);

        string roomId;
        if (version.RoomIdIsCreateEventHash && isCreate)
        {
            if (json.ContainsKey("room_id"))
                return Fail("a room version 12 create event has no room_id", out error);
            roomId = "!" + eventId[1..];
        }
        else if (!TryString(json, "room_id", out roomId) || !RoomId.TryParse(roomId, out _)
                 || (version.RoomIdIsCreateEventHash && !IsHashRoomId(roomId)))
            return Fail("room_id is missing or malformed", out error);

        string? redacts = null;
        if (type == "m.room.redaction")
        {
            var holder = version.RedactsInContent ? content : json;
            if (holder.ContainsKey("redacts") && (!TryString(holder, "redacts", out redacts) || !redacts.StartsWith('$')))
                return Fail("redacts must be an event ID", out error);
        }

        pdu = new Pdu
        {
            Version = version, Json = json, EventId = eventId, RoomId = roomId, Type = type, StateKey = stateKey, Sender = sender,
            Depth = depth, OriginServerTs = originServerTs, PrevEvents = prevEvents, AuthEvents = authEvents,
            Redacts = redacts, Membership = type == "m.room.member" && TryString(content, "membership", out var membership) ? membership : null,
        };
        error = "";
        return true;
    }

    /// <summary>v12 room IDs: <c>!</c> followed by the URL-safe unpadded base64 of a SHA-256 hash.</summary>
    public static bool IsHashRoomId(string roomId) =>
        roomId.Length == 44 && roomId[0] == '!' && roomId.AsSpan(1).ContainsAnyExcept(UrlSafeBase64Chars) == false;

    private static readonly System.Buffers.SearchValues<char> UrlSafeBase64Chars =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

    private static bool IsServerChosenEventId(string eventId) =>
        eventId.Length > 1 && eventId[0] == '$' && Bytes(eventId) <= MaxIdentifierBytes && EventSigning.ServerOf(eventId) is not null;

    private static bool IsEventId(string eventId, RoomVersion version) =>
        version.EventIdFormat == EventIdFormat.ServerChosen ? IsServerChosenEventId(eventId)
            : eventId.Length > 1 && eventId[0] == '$' && Bytes(eventId) <= MaxIdentifierBytes;

    /// <summary>v1-v2 reference events as <c>[event_id, {hashes}]</c> pairs, later versions as plain IDs.</summary>
    private static bool TryEventReferences(JsonObject json, string key, RoomVersion version, out List<string> ids)
    {
        ids = [];
        if (json[key] is not JsonArray array)
            return false;
        foreach (var item in array)
        {
            var idNode = version.EventIdFormat == EventIdFormat.ServerChosen
                ? item is JsonArray { Count: 2 } pair && pair[1] is JsonObject ? pair[0] : null
                : item;
            if (idNode is not JsonValue value || !value.TryGetValue<string>(out var id) || !IsEventId(id, version))
                return false;
            ids.Add(id);
        }
        return true;
    }

    private static bool ValidSignatures(JsonNode? node) =>
        node is JsonObject servers && servers.All(s => s.Value is JsonObject keys && keys.All(k => k.Value is JsonValue v && v.TryGetValue<string>(out _)));

    private static bool TryString(JsonObject obj, string key, out string value)
    {
        value = "";
        return obj[key] is JsonValue node && node.TryGetValue(out value!);
    }

    private static bool TryInteger(JsonObject obj, string key, out long value)
    {
        return obj[key].TryGetInteger(out value);
    }

    private static int Bytes(string text) => Encoding.UTF8.GetByteCount(text);

    private static bool Fail(string message, out string error)
    {
        error = message;
        return false;
    }
}
