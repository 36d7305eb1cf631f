using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Events;

/// <summary>Content hashes, reference hashes and the event IDs derived from them.</summary>
public static class EventHashes
{
    /// <summary>SHA-256 of the canonical event without <c>unsigned</c>, <c>signatures</c> and <c>hashes</c>.</summary>
    public static byte[] ContentHash(JsonObject evt) => SHA256.HashData(CanonicalJson.EncodeWithout(evt, "unsigned", "signatures", "hashes"));

    /// <summary>SHA-256 of the canonical redacted event without <c>signatures</c> and <c>unsigned</c>.</summary>
    public static byte[] ReferenceHash(JsonObject evt, RoomVersion version) =>
        SHA256.HashData(Redaction.EncodeRedactedWithout(evt, version, "signatures", "unsigned"));

    /// <summary>True when <c>hashes.sha256</c> matches the event; false means the event arrived redacted or tampered with.</summary>
    public static bool HasValidContentHash(JsonObject evt) =>
        evt["hashes"] is JsonObject hashes && hashes["sha256"] is JsonValue value && value.TryGetValue<string>(out var encoded)
        && UnpaddedBase64.TryDecode(encoded, out var expected) && CryptographicOperations.FixedTimeEquals(expected, ContentHash(evt));

    /// <summary>The event ID of a v3+ event (the v1-v2 ID is chosen by its sender and read from the event).</summary>
    public static string ComputeEventId(JsonObject evt, RoomVersion version)
    {
        var hash = ReferenceHash(evt, version);
        return version.EventIdFormat switch
        {
            EventIdFormat.ReferenceHashBase64 => "$" + UnpaddedBase64.Encode(hash),
            EventIdFormat.ReferenceHashUrlSafe => "$" + UnpaddedBase64.EncodeUrlSafe(hash),
            _ => throw new InvalidOperationException($"room version {version.Id} events carry their own event_id"),
        };
    }
}
