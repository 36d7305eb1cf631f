using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Tests;

/// <summary>Event hashing, signing (the appendix's event vectors), IDs per room version, redaction and PDU format limits.</summary>
public sealed class EventTests
{
    private static JsonObject Parse(string json) => StrictJsonParser.ParseObject(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void Minimal_event_signs_to_the_spec_vector()
    {
        var evt = Parse("""
            {"room_id":"!x:domain","sender":"@a:domain","origin":"domain","origin_server_ts":1000000,"signatures":{},
             "hashes":{},"type":"X","content":{},"prev_events":[],"auth_events":[],"depth":3,"unsigned":{"age_ts":1000000}}
            """);
        EventSigning.HashAndSign(evt, RoomVersions.V1, "domain", JsonSigningTests.SpecKey());
        Assert.Equal("""
            {"auth_events":[],"content":{},"depth":3,"hashes":{"sha256":"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},"origin":"domain","origin_server_ts":1000000,"prev_events":[],"room_id":"!x:domain","sender":"@a:domain","signatures":{"domain":{"ed25519:1":"KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}},"type":"X","unsigned":{"age_ts":1000000}}
            """.Trim(), CanonicalJson.EncodeToString(evt));
    }

    [Fact]
    public void Event_with_redactable_content_signs_to_the_spec_vector()
    {
        var evt = Parse("""
            {"content":{"body":"Here is the message content"},"event_id":"$0:domain","origin":"domain","origin_server_ts":1000000,
             "type":"m.room.message","room_id":"!r:domain","sender":"@u:domain","signatures":{},"unsigned":{"age_ts":1000000}}
            """);
        EventSigning.HashAndSign(evt, RoomVersions.V1, "domain", JsonSigningTests.SpecKey());
        Assert.Equal("onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g", evt["hashes"]!["sha256"]!.AsString());
        Assert.Equal("Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA",
            evt["signatures"]!["domain"]!["ed25519:1"]!.AsString());
        Assert.True(EventHashes.HasValidContentHash(evt));
    }

    [Fact]
    public void Content_hash_detects_a_redacted_or_altered_copy()
    {
        var room = new TestRoom(RoomVersions.V10);
        var message = room.Build(TestRoom.Alice, "m.room.message", null, new JsonObject { ["body"] = "secret" });
        Assert.True(EventHashes.HasValidContentHash(message.Json));
        var redacted = Redaction.Redact(message.Json, RoomVersions.V10);
        Assert.False(EventHashes.HasValidContentHash(redacted));
        // The signature covers the redacted form, so the redacted copy still verifies and keeps the same event ID.
        Assert.Equal(message.EventId, Pdu.Parse(redacted, RoomVersions.V10).EventId);
        Assert.True(EventSigning.HasValidSignatures(Pdu.Parse(redacted, RoomVersions.V10), KnownTestKeys, out var error), error);
    }

    [Fact]
    public void Signatures_verify_and_fail_for_a_forged_sender_or_an_expired_key()
    {
        var room = new TestRoom(RoomVersions.V10);
        var message = room.Build(TestRoom.Alice, "m.room.message", null, new JsonObject { ["body"] = "hi" });
        Assert.True(EventSigning.HasValidSignatures(message, KnownTestKeys, out _));

        var forged = (JsonObject)message.Json.DeepClone();
        forged["sender"] = TestRoom.Bob;
        Assert.False(EventSigning.HasValidSignatures(Pdu.Parse(forged, RoomVersions.V10), KnownTestKeys, out var error));
        Assert.Contains("b.test", error);

        (VerifyKey, long)? Expired(string server, string keyId) =>
            (new VerifyKey(keyId, TestRoom.KeyOf(server).PublicKey, ValidUntilTs: 10, ExpiredTs: null), 0);
        Assert.False(EventSigning.HasValidSignatures(message, Expired, out _));
        // Room versions before 5 ignore valid_until_ts.
        var old = new TestRoom(RoomVersions.V4).Build(TestRoom.Alice, "m.room.message", null, new JsonObject());
        Assert.True(EventSigning.HasValidSignatures(old, Expired, out _));
    }

    internal static (VerifyKey, long)? KnownTestKeys(string server, string keyId) =>
        (new VerifyKey(keyId, TestRoom.KeyOf(server).PublicKey, long.MaxValue, null), 0);

    [Fact]
    public void Restricted_joins_need_the_authorising_server_signature()
    {
        var room = TestRoom.WithDefaults(RoomVersions.V10, "restricted");
        var join = room.Member(TestRoom.Bob, TestRoom.Bob, "join", new JsonObject { ["join_authorised_via_users_server"] = TestRoom.Alice });
        Assert.Equal(["b.test", "a.test"], EventSigning.RequiredSigners(join).Order().Reverse());
        Assert.False(EventSigning.HasValidSignatures(join, KnownTestKeys, out _));
        EventSigning.AddSignature(join.Json, RoomVersions.V10, "a.test", TestRoom.KeyOf("a.test"));
        Assert.True(EventSigning.HasValidSignatures(join, KnownTestKeys, out var error), error);
    }

    [Fact]
    public void A_third_party_invite_is_sent_by_the_invited_users_server_when_the_inviters_did_not_sign_it()
    {
        var room = TestRoom.WithDefaults(RoomVersions.V10, "invite");
        var thirdParty = new JsonObject { ["third_party_invite"] = new JsonObject { ["signed"] = new JsonObject { ["mxid"] = TestRoom.Bob, ["token"] = "t" } } };
        var exchanged = room.Member(TestRoom.Alice, TestRoom.Bob, "invite", thirdParty);
        Assert.Equal("a.test", EventSigning.SendingServer(exchanged));

        var json = (JsonObject)exchanged.Json.DeepClone();
        json["signatures"] = new JsonObject();
        EventSigning.AddSignature(json, RoomVersions.V10, "b.test", TestRoom.KeyOf("b.test"));
        var builtByInvitee = Pdu.Parse(json, RoomVersions.V10);
        Assert.Equal("b.test", EventSigning.SendingServer(builtByInvitee));
        Assert.True(EventSigning.HasValidSignatures(builtByInvitee, KnownTestKeys, out var error), error);

        Assert.Equal("a.test", EventSigning.SendingServer(room.Build(TestRoom.Alice, "m.room.message", null, new JsonObject())));
    }

    [Theory]
    [InlineData("3", "^\\$[A-Za-z0-9+/]{43}$")]
    [InlineData("4", "^\\$[A-Za-z0-9_-]{43}$")]
    [InlineData("11", "^\\$[A-Za-z0-9_-]{43}$")]
    public void Event_ids_are_reference_hashes_from_v3(string versionId, string pattern)
    {
        var version = RoomVersions.Find(versionId)!;
        var room = new TestRoom(version);
        var evt = room.Build(TestRoom.Alice, "m.room.message", null, new JsonObject { ["body"] = "x" });
        Assert.Matches(pattern, evt.EventId);
        var expected = "$" + (version.EventIdFormat == EventIdFormat.ReferenceHashBase64
            ? UnpaddedBase64.Encode(EventHashes.ReferenceHash(evt.Json, version))
            : UnpaddedBase64.EncodeUrlSafe(EventHashes.ReferenceHash(evt.Json, version)));
        Assert.Equal(expected, evt.EventId);
        // Non-essential fields do not change the ID; essential ones do.
        var edited = (JsonObject)evt.Json.DeepClone();
        edited["content"] = new JsonObject { ["body"] = "changed" };
        edited["hashes"] = evt.Json["hashes"]!.DeepClone();
        Assert.Equal(evt.EventId, EventHashes.ComputeEventId(edited, version));
        edited["origin_server_ts"] = 5;
        Assert.NotEqual(evt.EventId, EventHashes.ComputeEventId(edited, version));
    }

    [Fact]
    public void Room_v12_ids_are_the_create_event_hash()
    {
        var room = new TestRoom(RoomVersions.V12);
        Assert.False(room.Create.Json.ContainsKey("room_id"));
        Assert.Equal("!" + room.Create.EventId[1..], room.RoomId);
        Assert.True(PduParser.IsHashRoomId(room.RoomId));
        var message = room.Build(TestRoom.Alice, "m.room.message", null, new JsonObject());
        Assert.Equal(room.RoomId, message.RoomId);
        Assert.DoesNotContain(room.Create.EventId, message.AuthEvents);

        var withRoomId = (JsonObject)room.Create.Json.DeepClone();
        withRoomId["room_id"] = room.RoomId;
        Assert.False(PduParser.TryParse(withRoomId, RoomVersions.V12, out _, out var error));
        Assert.Contains("room_id", error);
        var serverRoomId = (JsonObject)message.Json.DeepClone();
        serverRoomId["room_id"] = "!old:a.test";
        Assert.False(PduParser.TryParse(serverRoomId, RoomVersions.V12, out _, out _));
    }

    [Fact]
    public void V1_and_v2_events_carry_their_own_id_and_reference_pairs()
    {
        var room = new TestRoom(RoomVersions.V1);
        var evt = room.Build(TestRoom.Alice, "m.room.message", null, new JsonObject());
        Assert.Matches("^\\$[0-9]+:a\\.test$", evt.EventId);
        Assert.Equal(room.Create.EventId, evt.AuthEvents.Single());
        var noId = (JsonObject)evt.Json.DeepClone();
        noId.Remove("event_id");
        Assert.False(PduParser.TryParse(noId, RoomVersions.V1, out _, out _));
        var plainRefs = (JsonObject)evt.Json.DeepClone();
        plainRefs["prev_events"] = new JsonArray(room.Create.EventId);
        Assert.False(PduParser.TryParse(plainRefs, RoomVersions.V1, out _, out _));
    }

    [Fact]
    public void Pdu_limits_are_enforced()
    {
        var room = new TestRoom(RoomVersions.V10);
        Assert.Throws<FormatException>(() => room.Build(TestRoom.Alice, "m.room.message", null, new JsonObject { ["body"] = new string('x', 65_500) }));
        Assert.Throws<FormatException>(() => room.Build(TestRoom.Alice, new string('t', 256), null, new JsonObject()));
        Assert.Throws<FormatException>(() => room.Build(TestRoom.Alice, "m.x", new string('k', 256), new JsonObject()));
        Assert.NotNull(room.Build(TestRoom.Alice, new string('t', 255), new string('k', 255), new JsonObject()));

        var valid = room.Build(TestRoom.Alice, "m.room.message", null, new JsonObject()).Json;
        foreach (var (field, bad) in new (string, JsonNode?)[]
                 {
                     ("depth", -1), ("depth", "1"), ("origin_server_ts", null), ("content", "x"), ("hashes", new JsonObject()),
                     ("signatures", new JsonObject { ["a.test"] = "x" }), ("prev_events", new JsonArray(1)), ("auth_events", "x"),
                     ("room_id", "room"), ("type", 5), ("sender", "not-a-user"), ("sender", "@a:" + new string('s', 260)),
                 })
        {
            var copy = (JsonObject)valid.DeepClone();
            copy[field] = bad;
            Assert.False(PduParser.TryParse(copy, RoomVersions.V10, out _, out var error), field);
            Assert.NotEmpty(error);
        }
    }

    [Theory]
    [InlineData("5", true)]
    [InlineData("6", false)]
    public void Floats_in_events_are_tolerated_only_before_v6(string versionId, bool accepted)
    {
        var version = RoomVersions.Find(versionId)!;
        var room = new TestRoom(version);
        var original = CanonicalJson.EncodeToString(room.Build(TestRoom.Alice, "m.room.message", null, new JsonObject { ["n"] = 1 }).Json);
        Assert.True(PduParser.TryParse(Encoding.UTF8.GetBytes(original), version, out _, out _));
        var text = original.Replace("\"n\":1", "\"n\":1.5");
        Assert.Equal(accepted, PduParser.TryParse(Encoding.UTF8.GetBytes(text), version, out _, out var error));
        Assert.Equal(accepted, error.Length == 0);
        var duplicate = original.Replace("{\"auth_events\"", "{\"depth\":1,\"auth_events\"");
        Assert.False(PduParser.TryParse(Encoding.UTF8.GetBytes(duplicate), version, out _, out error));
        Assert.Contains("duplicate", error);
        var deep = text.Replace("\"n\":1.5", "\"n\":" + new string('[', 200) + new string(']', 200));
        Assert.False(PduParser.TryParse(Encoding.UTF8.GetBytes(deep), version, out _, out _));
        // The same rules hold for an event found inside another document (a transaction).
        var nested = (JsonObject)JsonNode.Parse(text)!;
        Assert.Equal(accepted, PduParser.TryParseUntrusted(nested, version, out _, out _));
    }

    [Theory]
    [InlineData("m.room.message", """{"body":"x","msgtype":"m.text"}""")]
    [InlineData("m.room.member", """{"membership":"join","displayname":"A","join_authorised_via_users_server":"@b:x","third_party_invite":{"signed":{"token":"t"},"x":1}}""")]
    [InlineData("m.room.create", """{"creator":"@a:x","room_version":"1","m.federate":false}""")]
    [InlineData("m.room.power_levels", """{"ban":50,"invite":5,"users":{"@a:x":100}}""")]
    [InlineData("m.room.redaction", """{"redacts":"$x","reason":"r"}""")]
    [InlineData("m.room.message", null)]
    public void The_redacted_form_hashes_and_signs_cover_is_written_as_a_redacted_copy_would_be(string type, string? content)
    {
        var evt = new JsonObject
        {
            ["type"] = type, ["room_id"] = "!r:x", ["sender"] = "@a:x", ["state_key"] = "", ["origin"] = "x", ["membership"] = "join",
            ["prev_events"] = new JsonArray("$p"), ["auth_events"] = new JsonArray("$a"), ["depth"] = 4, ["origin_server_ts"] = 1,
            ["hashes"] = new JsonObject { ["sha256"] = "h" }, ["signatures"] = new JsonObject { ["x"] = new JsonObject { ["ed25519:1"] = "s" } },
            ["unsigned"] = new JsonObject { ["age"] = 1 }, ["prev_state"] = new JsonArray(), ["extra"] = 1,
        };
        if (content is not null)
            evt["content"] = JsonNode.Parse(content);
        foreach (var version in new[] { RoomVersions.V1, RoomVersions.V8, RoomVersions.V9, RoomVersions.V10, RoomVersions.V11, RoomVersions.V12 })
            Assert.Equal(Encoding.UTF8.GetString(CanonicalJson.EncodeWithout(Redaction.Redact(evt, version), "signatures", "unsigned")),
                Encoding.UTF8.GetString(Redaction.EncodeRedactedWithout(evt, version, "signatures", "unsigned")));
    }

    [Fact]
    public void Redaction_keeps_only_what_each_room_version_protects()
    {
        var content = new JsonObject
        {
            ["membership"] = "join", ["join_authorised_via_users_server"] = TestRoom.Bob, ["displayname"] = "A",
            ["third_party_invite"] = new JsonObject { ["signed"] = new JsonObject { ["token"] = "t" }, ["display_name"] = "x" },
        };
        var member = new JsonObject
        {
            ["type"] = "m.room.member", ["state_key"] = TestRoom.Alice, ["content"] = content, ["origin"] = "a.test",
            ["membership"] = "join", ["prev_state"] = new JsonArray(), ["unsigned"] = new JsonObject { ["age"] = 1 }, ["extra"] = 1,
        };
        var v8 = Redaction.Redact(member, RoomVersions.V8);
        Assert.Equal("""{"content":{"membership":"join"},"membership":"join","origin":"a.test","prev_state":[],"state_key":"@alice:a.test","type":"m.room.member"}""",
            CanonicalJson.EncodeToString(v8));
        Assert.Equal("""{"join_authorised_via_users_server":"@bob:b.test","membership":"join"}""",
            CanonicalJson.EncodeToString(Redaction.Redact(member, RoomVersions.V9)["content"]));
        Assert.Equal("""{"content":{"join_authorised_via_users_server":"@bob:b.test","membership":"join","third_party_invite":{"signed":{"token":"t"}}},"state_key":"@alice:a.test","type":"m.room.member"}""",
            CanonicalJson.EncodeToString(Redaction.Redact(member, RoomVersions.V11)));

        JsonObject Event(string type, JsonObject c) => new() { ["type"] = type, ["content"] = c };
        var create = Event("m.room.create", new JsonObject { ["creator"] = "@a:x", ["m.federate"] = false, ["room_version"] = "1" });
        Assert.Equal("""{"creator":"@a:x"}""", CanonicalJson.EncodeToString(Redaction.Redact(create, RoomVersions.V10)["content"]));
        Assert.Equal("""{"creator":"@a:x","m.federate":false,"room_version":"1"}""", CanonicalJson.EncodeToString(Redaction.Redact(create, RoomVersions.V11)["content"]));

        var joinRules = Event("m.room.join_rules", new JsonObject { ["join_rule"] = "restricted", ["allow"] = new JsonArray(), ["x"] = 1 });
        Assert.Equal("""{"join_rule":"restricted"}""", CanonicalJson.EncodeToString(Redaction.Redact(joinRules, RoomVersions.V7)["content"]));
        Assert.Equal("""{"allow":[],"join_rule":"restricted"}""", CanonicalJson.EncodeToString(Redaction.Redact(joinRules, RoomVersions.V8)["content"]));

        var levels = Event("m.room.power_levels", new JsonObject { ["invite"] = 5, ["ban"] = 50, ["notifications"] = new JsonObject() });
        Assert.Equal("""{"ban":50}""", CanonicalJson.EncodeToString(Redaction.Redact(levels, RoomVersions.V10)["content"]));
        Assert.Equal("""{"ban":50,"invite":5}""", CanonicalJson.EncodeToString(Redaction.Redact(levels, RoomVersions.V11)["content"]));

        var aliases = Event("m.room.aliases", new JsonObject { ["aliases"] = new JsonArray("#a:x") });
        Assert.Equal("""{"aliases":["#a:x"]}""", CanonicalJson.EncodeToString(Redaction.Redact(aliases, RoomVersions.V5)["content"]));
        Assert.Equal("{}", CanonicalJson.EncodeToString(Redaction.Redact(aliases, RoomVersions.V6)["content"]));

        var redaction = Event("m.room.redaction", new JsonObject { ["redacts"] = "$x", ["reason"] = "spam" });
        Assert.Equal("{}", CanonicalJson.EncodeToString(Redaction.Redact(redaction, RoomVersions.V10)["content"]));
        Assert.Equal("""{"redacts":"$x"}""", CanonicalJson.EncodeToString(Redaction.Redact(redaction, RoomVersions.V11)["content"]));

        var history = Event("m.room.history_visibility", new JsonObject { ["history_visibility"] = "shared", ["x"] = 1 });
        Assert.Equal("""{"history_visibility":"shared"}""", CanonicalJson.EncodeToString(Redaction.Redact(history, RoomVersions.V1)["content"]));
        Assert.Equal("{}", CanonicalJson.EncodeToString(Redaction.Redact(Event("m.room.message", new JsonObject { ["body"] = "x" }), RoomVersions.V12)["content"]));
    }

    [Fact]
    public void Redacts_is_read_from_the_top_level_before_v11_and_from_content_after()
    {
        var old = new TestRoom(RoomVersions.V10);
        var target = old.Build(TestRoom.Alice, "m.room.message", null, new JsonObject());
        var json = old.Build(TestRoom.Alice, "m.room.message", null, new JsonObject()).Json;
        json["type"] = "m.room.redaction";
        json["redacts"] = target.EventId;
        Assert.Equal(target.EventId, Pdu.Parse(json, RoomVersions.V10).Redacts);
        Assert.Null(Pdu.Parse(json, RoomVersions.V11).Redacts);
        json["content"] = new JsonObject { ["redacts"] = target.EventId };
        Assert.Equal(target.EventId, Pdu.Parse(json, RoomVersions.V11).Redacts);
    }

    [Fact]
    public void The_room_version_table_answers_capability_questions()
    {
        Assert.Equal(12, RoomVersions.All.Count);
        Assert.Same(RoomVersions.V11, RoomVersions.Default);
        Assert.Null(RoomVersions.Find("13"));
        Assert.Equal(["1", "2"], RoomVersions.All.Where(v => v.EventIdDomainSignature).Select(v => v.Id));
        Assert.Equal(["1", "2", "3", "4", "5"], RoomVersions.All.Where(v => !v.StrictCanonicalJson).Select(v => v.Id));
        Assert.Equal(["7", "8", "9", "10", "11", "12"], RoomVersions.All.Where(v => v.KnockJoinRule).Select(v => v.Id));
        Assert.Equal(["10", "11", "12"], RoomVersions.All.Where(v => v.KnockRestrictedJoinRule).Select(v => v.Id));
        Assert.Equal(StateResolutionAlgorithm.V1, RoomVersions.V1.StateResolution);
        Assert.Equal(StateResolutionAlgorithm.V2, RoomVersions.V11.StateResolution);
        Assert.Equal(StateResolutionAlgorithm.V2_1, RoomVersions.V12.StateResolution);
    }
}
