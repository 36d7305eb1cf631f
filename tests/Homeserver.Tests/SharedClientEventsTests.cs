using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Tests;

/// <summary>
/// An event serialised once for many syncs reads, for each of them, exactly as the JSON tree of
/// <see cref="ClientEventFormat.ToClient"/> written into a response would.
/// </summary>
public sealed class SharedClientEventsTests
{
    private static readonly RoomVersion Version = RoomVersions.Find("11")!;
    private static readonly HomeserverConfig Config = new() { ServerName = "local.test" };

    private static Pdu Event(string type, string? stateKey, JsonObject content, string eventId, string sender = "@alice:local.test")
    {
        var json = new JsonObject
        {
            ["type"] = type,
            ["sender"] = sender,
            ["room_id"] = "!room:local.test",
            ["content"] = content,
            ["origin_server_ts"] = 1_765_000_000_000L,
            ["depth"] = 5L,
            ["prev_events"] = new JsonArray("$prev"),
            ["auth_events"] = new JsonArray("$create"),
            ["hashes"] = new JsonObject { ["sha256"] = "abc" },
            ["signatures"] = new JsonObject(),
        };
        if (stateKey is not null)
            json["state_key"] = stateKey;
        Assert.True(PduParser.TryParse(json, Version, out var pdu, out var error, trustedEventId: eventId), error);
        return pdu;
    }

    private static string Written(JsonNode node)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, ErrorMiddleware.WriterOptions))
            new JsonArray(node).WriteTo(writer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static TheoryData<string> Cases => ["message", "state", "redaction", "unicode"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_shared_event_is_written_as_its_tree_would_be_for_every_reader(string kind)
    {
        var pdu = kind switch
        {
            "message" => Event("m.room.message", null, new JsonObject { ["msgtype"] = "m.text", ["body"] = "hello" }, "$m"),
            "state" => Event("m.room.member", "@bob:local.test", new JsonObject { ["membership"] = "join", ["displayname"] = "Bob" }, "$s"),
            "redaction" => Event("m.room.redaction", null, new JsonObject { ["redacts"] = "$m" }, "$r"),
            _ => Event("m.room.message", null, new JsonObject { ["body"] = "é \"quoted\" <b> \u2028 😀", ["n"] = 1.5 }, "$u"),
        };
        var shared = new SharedClientEvents(Config);
        foreach (var (now, transactionId) in new[] { (1_765_000_000_500L, (string?)null), (1_765_000_009_000L, "txn \"1\""), (1_764_000_000_000L, null) })
            Assert.Equal(Written(ClientEventFormat.ToClient(pdu, now, transactionId)), Written(shared.ToClient(pdu, now, transactionId)));
    }

    [Fact]
    public void A_shared_event_can_be_copied_and_read_back()
    {
        var pdu = Event("m.room.message", null, new JsonObject { ["body"] = "hello" }, "$c");
        var node = new SharedClientEvents(Config).ToClient(pdu, 1_765_000_001_000L, "t1");
        var copy = JsonNode.Parse(node.DeepClone().ToJsonString())!;
        Assert.Equal("$c", copy["event_id"]!.GetValue<string>());
        Assert.Equal(1000, copy["unsigned"]!["age"]!.GetValue<long>());
        Assert.Equal("t1", copy["unsigned"]!["transaction_id"]!.GetValue<string>());
    }

    [Fact]
    public void A_local_message_is_serialised_once_stored_and_its_tree_dropped_while_state_and_remote_events_keep_theirs()
    {
        var shared = new SharedClientEvents(Config);
        var message = Event("m.room.message", null, new JsonObject { ["msgtype"] = "m.text", ["body"] = "hello" }, "$local");
        var state = Event("m.room.member", "@alice:local.test", new JsonObject { ["membership"] = "join" }, "$state");
        var remote = Event("m.room.message", null, new JsonObject { ["body"] = "hi" }, "$remote", sender: "@bob:remote.test");
        var trees = new[] { message, state, remote }.Select(e => e.Json).ToList();
        var expected = Written(ClientEventFormat.ToClient(message, 1_765_000_000_500L, "t1"));

        foreach (var pdu in new[] { message, state, remote })
            shared.OnPersisted(pdu, roomAfter: null!);

        Assert.NotSame(trees[0], message.Json);
        Assert.Same(trees[1], state.Json);
        Assert.Same(trees[2], remote.Json);
        // The dropped tree parses again from the same canonical JSON, and the bytes made from it are what syncs write.
        Assert.Equal(CanonicalJson.Encode(trees[0]), CanonicalJson.Encode(message.Json));
        Assert.Equal(expected, Written(shared.ToClient(message, 1_765_000_000_500L, "t1")));
    }
}
