using System.Text.Json.Nodes;
using Matrix.AppServices.Registration;
using Matrix.AppServices.Sdk;

namespace Matrix.Homeserver.Tests;

/// <summary>The AS SDK's own parts: generated registrations, the bridge state store, typed transactions, bridge configs.</summary>
public sealed class AppServiceSdkPartsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sdk-parts-").FullName;

    [Fact]
    public void A_generated_registration_parses_back_and_keeps_its_tokens_when_rewritten()
    {
        var request = new RegistrationRequest("ldap", "http://127.0.0.1:29330", "ldapbot", @"@ldap_.*:example\.org", @"#ldap_.*:example\.org",
            ReceiveEphemeral: true, DeviceData: true, Protocols: ["ldap"]);
        var path = Path.Combine(_dir, "reg.yaml");
        var first = RegistrationGenerator.WriteFile(path, request, "example.org");
        Assert.Equal(64, first.AsToken.Length);
        Assert.NotEqual(first.AsToken, first.HsToken);
        Assert.True(first.ClaimsUserExclusively("@ldap_alice:example.org"));
        Assert.False(first.IsInterestedInUser("@ldap_alice:exampleXorg"));
        Assert.True(first.ClaimsAliasExclusively("#ldap_room:example.org"));
        Assert.Equal("@ldapbot:example.org", first.SenderUserId);
        Assert.True(first.ReceiveEphemeral && first.DeviceData && !first.RateLimited);
        Assert.Equal(["ldap"], first.Protocols);

        var second = RegistrationGenerator.WriteFile(path, request with { Url = "http://127.0.0.1:29331" }, "example.org");
        Assert.Equal((first.AsToken, first.HsToken), (second.AsToken, second.HsToken));
        Assert.Equal("http://127.0.0.1:29331", second.Url);
        Assert.NotEqual(first.AsToken, RegistrationGenerator.WriteFile(Path.Combine(_dir, "other.yaml"), request, "example.org").AsToken);
    }

    [Fact]
    public void The_state_store_survives_a_restart_once_flushed_and_never_leaves_a_partial_file()
    {
        var path = Path.Combine(_dir, "state.json");
        var store = new BridgeStateStore(path);
        store.MarkRegistered("@b_a:x");
        store.SetJoined("!r:x", "@b_a:x", joined: true);
        store.SetJoined("!s:x", "@b_a:x", joined: true);
        store.SetJoined("!s:x", "@b_a:x", joined: false);
        store.Set("rooms", "cn=eng", "!r:x");
        store.Set("rooms", "cn=gone", "!g:x");
        store.Set("rooms", "cn=gone", null);
        store.Flush();

        var reopened = new BridgeStateStore(path);
        Assert.True(reopened.IsRegistered("@b_a:x"));
        Assert.False(reopened.IsRegistered("@b_b:x"));
        Assert.True(reopened.IsJoined("!r:x", "@b_a:x"));
        Assert.False(reopened.IsJoined("!s:x", "@b_a:x"));
        Assert.Equal(["!r:x"], reopened.JoinedRooms("@b_a:x"));
        Assert.Equal("!r:x", reopened.Get("rooms", "cn=eng"));
        Assert.Equal(["cn=eng"], reopened.All("rooms").Keys);
        Assert.False(File.Exists(path + ".tmp"));
        Assert.Null(new BridgeStateStore().Get("rooms", "cn=eng"));
    }

    [Fact]
    public void A_transaction_is_typed_and_malformed_entries_are_skipped()
    {
        var body = JsonNode.Parse("""
            {
              "events": [
                {"event_id": "$1", "room_id": "!r:x", "sender": "@a:x", "type": "m.room.message", "origin_server_ts": 5,
                 "content": {"msgtype": "m.text", "body": "hi", "format": "org.matrix.custom.html", "formatted_body": "<b>hi</b>",
                             "m.relates_to": {"rel_type": "m.thread", "event_id": "$root", "m.in_reply_to": {"event_id": "$0"}}}},
                {"event_id": "$2", "room_id": "!r:x", "sender": "@a:x", "type": "m.room.member", "state_key": "@b_g:x", "content": {"membership": "invite"}},
                {"event_id": 3, "room_id": "!r:x", "sender": "@a:x", "type": "m.bad", "content": {}}
              ],
              "de.sorunome.msc2409.ephemeral": [
                {"type": "m.typing", "room_id": "!r:x", "content": {"user_ids": ["@a:x"]}},
                {"type": "m.receipt", "room_id": "!r:x", "content": {"$1": {"m.read": {"@a:x": {"ts": 7, "thread_id": "main"}}}}},
                {"type": "m.presence", "sender": "@a:x", "content": {"presence": "online", "currently_active": true}}
              ],
              "de.sorunome.msc2409.to_device": [
                {"sender": "@a:x", "type": "m.room_key_request", "to_user_id": "@b_g:x", "to_device_id": "D", "content": {"action": "request"}},
                {"sender": "@a:x", "type": "broken"}
              ],
              "org.matrix.msc3202.device_lists": {"changed": ["@a:x"], "left": ["@c:x"]},
              "org.matrix.msc3202.device_one_time_keys_count": {"@b_g:x": {"D": {"signed_curve25519": 3}}},
              "org.matrix.msc3202.device_unused_fallback_key_types": {"@b_g:x": {"D": ["signed_curve25519"]}}
            }
            """)!.AsObject();
        var t = Transaction.Parse(body);
        Assert.Equal(["$1", "$2"], t.Events.Select(e => e.EventId));
        var message = t.Events[0].Message!;
        Assert.Equal(("m.text", "hi", "<b>hi</b>", "$0", "$root"), (message.MsgType, message.Body, message.FormattedBody, message.InReplyTo, message.ThreadRoot));
        Assert.Equal("invite", t.Events[1].Membership);
        Assert.Equal(["@a:x"], t.Typing.Single().UserIds);
        Assert.Equal(new Receipt("!r:x", "$1", "m.read", "@a:x", 7, "main"), t.Receipts.Single());
        Assert.Equal(("@a:x", "online", true), (t.Presence.Single().UserId, t.Presence.Single().Presence, t.Presence.Single().CurrentlyActive));
        Assert.Equal(("@b_g:x", "D", "request"), (t.ToDevice.Single().ToUserId, t.ToDevice.Single().ToDeviceId, t.ToDevice.Single().Content["action"]!.GetValue<string>()));
        Assert.Equal(["@a:x"], t.DeviceData.Changed);
        Assert.Equal(["@c:x"], t.DeviceData.Left);
        Assert.Equal(3, t.DeviceData.OneTimeKeyCounts[("@b_g:x", "D")]["signed_curve25519"]);
        Assert.Equal(["signed_curve25519"], t.DeviceData.UnusedFallbackKeyTypes[("@b_g:x", "D")]);
        Assert.True(Transaction.Parse(new JsonObject()).DeviceData.IsEmpty);
    }

    [Fact]
    public void A_bridge_config_resolves_paths_and_names_its_mistakes()
    {
        var path = Path.Combine(_dir, "bridge.yaml");
        File.WriteAllText(path, """
            homeserver: { url: "http://127.0.0.1:8008", server_name: example.org }
            appservice: { id: echo, port: 29330, registration: reg.yaml, sender_localpart: echobot, user_prefix: echo_ }
            """);
        var config = BridgeConfig.Load<BridgeConfig>(path);
        Assert.Equal(Path.Combine(_dir, "reg.yaml"), config.AppService.Registration);
        Assert.Equal(Path.Combine(_dir, "data"), config.AppService.DataDir);
        Assert.Equal("http://127.0.0.1:29330", config.EffectiveUrl);
        Assert.Equal("@echo_bob:example.org", config.UserId("bob"));
        Assert.Equal(@"@echo_.*:example\.org", config.RegistrationRequest().UserRegex);

        File.WriteAllText(path, "homeserver: { server_name: example.org, colour: blue }\n");
        Assert.Contains("line 1", Assert.Throws<BridgeConfigException>(() => BridgeConfig.Load<BridgeConfig>(path)).Message);
        File.WriteAllText(path, "homeserver: { server_name: example.org }\n");
        Assert.Equal("appservice.id is required", Assert.Throws<BridgeConfigException>(() => BridgeConfig.Load<BridgeConfig>(path)).Message);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
