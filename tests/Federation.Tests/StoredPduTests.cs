using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Tests;

/// <summary>Events read back from their stored UTF-8 without a JSON tree, and events compacted to their UTF-8.</summary>
public sealed class StoredPduTests
{
    public static TheoryData<string> Versions => new() { "1", "3", "10", "11", "12" };

    [Theory]
    [MemberData(nameof(Versions))]
    public void A_stored_event_reads_back_as_the_parser_reads_it(string versionId)
    {
        var version = RoomVersions.Find(versionId)!;
        foreach (var original in SampleEvents(version))
        {
            var utf8 = CanonicalJson.Encode(original.Json);
            Assert.True(StoredPduReader.TryRead(utf8, original.EventId, version, out var stored), original.ToString());
            AssertSameEvent(original, stored);
        }
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public void A_compacted_event_keeps_its_fields_and_parses_its_tree_again(string versionId)
    {
        var version = RoomVersions.Find(versionId)!;
        foreach (var pdu in SampleEvents(version))
        {
            var before = CanonicalJson.EncodeToString(pdu.Json);
            var tree = pdu.Json;
            pdu.Compact();
            Assert.NotSame(tree, pdu.Json);
            Assert.Equal(before, CanonicalJson.EncodeToString(pdu.Json));
            Assert.Same(pdu.Json["content"], pdu.Content);
            pdu.Compact();
            pdu.Compact();
            Assert.Equal(before, CanonicalJson.EncodeToString(pdu.Json));
        }
    }

    [Fact]
    public void Shapes_the_reader_does_not_expect_are_left_to_the_tree_parser()
    {
        var room = TestRoom.WithDefaults(RoomVersions.V11);
        var message = room.Build(TestRoom.Alice, "m.room.message", null, new JsonObject { ["body"] = "hi" });
        var withUnsigned = (JsonObject)message.Json.DeepClone();
        withUnsigned["unsigned"] = new JsonObject { ["age"] = 5 };
        Assert.False(StoredPduReader.TryRead(CanonicalJson.Encode(withUnsigned), message.EventId, RoomVersions.V11, out _));
        var escapedKey = CanonicalJson.EncodeToString(message.Json).Replace("\"sender\"", "\"s\\u0065nder\"");
        Assert.False(StoredPduReader.TryRead(Encoding.UTF8.GetBytes(escapedKey), message.EventId, RoomVersions.V11, out _));
        Assert.False(StoredPduReader.TryRead("[1]"u8.ToArray(), message.EventId, RoomVersions.V11, out _));
        Assert.False(StoredPduReader.TryRead("{\"type\":"u8.ToArray(), message.EventId, RoomVersions.V11, out _));
    }

    private static IEnumerable<Pdu> SampleEvents(RoomVersion version)
    {
        var room = TestRoom.WithDefaults(version);
        yield return room.Create;
        var content = new JsonObject
        {
            ["body"] = "\"quoted\" \\ caf\u00e9 \u2028 \U0001F600 <b>",
            ["msgtype"] = "m.text",
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.thread", ["event_id"] = room.Create.EventId },
        };
        // Room versions before 6 carry floats (and integers past 2^53) as they came.
        if (!version.StrictCanonicalJson)
            content["ratio"] = 0.1 + 0.2;
        var text = room.Build(TestRoom.Alice, "m.room.message", null, content);
        yield return text;
        var join = room.Apply(room.Member(TestRoom.Alice, TestRoom.Alice, "join", new JsonObject { ["displayname"] = "Alice \u00c5" }));
        Assert.Equal("join", join.Membership);
        yield return join;
        var redaction = room.Build(TestRoom.Alice, "m.room.redaction", null,
            version.RedactsInContent ? new JsonObject { ["redacts"] = text.EventId } : new JsonObject());
        if (!version.RedactsInContent)
        {
            var json = (JsonObject)redaction.Json.DeepClone();
            json["redacts"] = text.EventId;
            redaction = Pdu.Parse(json, version);
        }
        yield return redaction;
    }

    private static void AssertSameEvent(Pdu expected, Pdu actual)
    {
        Assert.Equal(expected.EventId, actual.EventId);
        Assert.Equal(expected.RoomId, actual.RoomId);
        Assert.Equal(expected.Type, actual.Type);
        Assert.Equal(expected.StateKey, actual.StateKey);
        Assert.Equal(expected.Sender, actual.Sender);
        Assert.Equal(expected.Depth, actual.Depth);
        Assert.Equal(expected.OriginServerTs, actual.OriginServerTs);
        Assert.Equal(expected.PrevEvents, actual.PrevEvents);
        Assert.Equal(expected.AuthEvents, actual.AuthEvents);
        Assert.Equal(expected.Redacts, actual.Redacts);
        Assert.Equal(expected.Membership, actual.Membership);
        Assert.Equal(CanonicalJson.EncodeToString(expected.Json), CanonicalJson.EncodeToString(actual.Json));
        Assert.Equal(CanonicalJson.EncodeToString(expected.Content), CanonicalJson.EncodeToString(actual.Content));
    }
}
