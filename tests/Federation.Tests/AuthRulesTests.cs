using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using static Matrix.Federation.Tests.TestRoom;

namespace Matrix.Federation.Tests;

/// <summary>The authorisation rules, each with an allowed and a rejected case, across the room versions where they differ.</summary>
public sealed class AuthRulesTests
{
    public static TheoryData<string> AllVersions => new(RoomVersions.All.Select(v => v.Id));

    private static RoomVersion V(string id) => RoomVersions.Find(id)!;

    private static void Allowed(AuthResult result, [System.Runtime.CompilerServices.CallerLineNumber] int line = 0) =>
        Assert.True(result.Allowed, $"line {line}: {result.Reason}");

    private static void Rejected(AuthResult result, string? reason = null, [System.Runtime.CompilerServices.CallerLineNumber] int line = 0)
    {
        Assert.False(result.Allowed, $"line {line}: expected a rejection");
        if (reason is not null)
            Assert.Contains(reason, result.Reason);
    }

    private static JsonObject Levels(JsonObject? users = null, params (string Key, JsonNode Value)[] levels)
    {
        var content = new JsonObject { ["users"] = users?.DeepClone() ?? new JsonObject() };
        foreach (var (key, value) in levels)
            content[key] = value.DeepClone();
        return content;
    }

    /// <summary>A public room where Bob has joined with power level 50 (Alice, the creator, has 100 or is a v12 creator).</summary>
    private static TestRoom RoomWithBob(RoomVersion version, string joinRule = "public")
    {
        var room = TestRoom.WithDefaults(version, joinRule);
        if (joinRule != "public")
            room.Apply(room.Member(Alice, Bob, "invite"));
        room.Apply(room.Member(Bob, Bob, "join"));
        var users = version.PrivilegedCreators ? new JsonObject { [Bob] = 50 } : new JsonObject { [Alice] = 100, [Bob] = 50 };
        Allowed(room.Try(room.Build(Alice, "m.room.power_levels", "", Levels(users))));
        return room;
    }

    // ---- m.room.create ----

    [Theory, MemberData(nameof(AllVersions))]
    public void Create_event_rules(string versionId)
    {
        var version = V(versionId);
        var room = new TestRoom(version);
        Allowed(room.Authorize(room.Create));

        var withPrev = room.Build(Alice, "m.room.create", "", new JsonObject { ["creator"] = Alice }, prev: [room.Create.EventId]);
        Rejected(room.Authorize(withPrev), "prev_events");

        var unknownVersion = new TestRoom(version, createContent: new JsonObject { ["room_version"] = "99" });
        Rejected(unknownVersion.Authorize(unknownVersion.Create), "room_version");

        var noCreator = new TestRoom(version, createContent: new JsonObject { ["creator"] = Alice });
        noCreator.Create.Content.Remove("creator");
        var noCreatorPdu = Pdu.Parse(noCreator.Create.Json, version);
        if (version.ImplicitRoomCreator)
            Allowed(noCreator.Authorize(noCreatorPdu));
        else
            Rejected(noCreator.Authorize(noCreatorPdu), "creator");
    }

    [Theory]
    [InlineData("1"), InlineData("6"), InlineData("11")]
    public void Create_room_id_must_be_on_the_senders_server_before_v12(string versionId)
    {
        var room = new TestRoom(V(versionId));
        var json = (JsonObject)room.Create.Json.DeepClone();
        json["room_id"] = "!room:b.test";
        Rejected(room.Authorize(Pdu.Parse(json, V(versionId))), "room_id");
    }

    [Fact]
    public void V12_additional_creators_must_be_user_ids()
    {
        var good = new TestRoom(RoomVersions.V12, createContent: new JsonObject { ["additional_creators"] = new JsonArray(Bob) });
        Allowed(good.Authorize(good.Create));
        var bad = new TestRoom(RoomVersions.V12, createContent: new JsonObject { ["additional_creators"] = new JsonArray("bob") });
        Rejected(bad.Authorize(bad.Create), "additional_creators");
        var notArray = new TestRoom(RoomVersions.V12, createContent: new JsonObject { ["additional_creators"] = Bob });
        Rejected(notArray.Authorize(notArray.Create), "additional_creators");
    }

    [Fact]
    public void V12_events_must_name_an_existing_create_event_through_their_room_id()
    {
        var room = TestRoom.WithDefaults(RoomVersions.V12);
        var message = room.Build(Alice, "m.room.message", null, new JsonObject());
        Allowed(room.Authorize(message));
        var otherRoom = new TestRoom(RoomVersions.V12);
        var json = (JsonObject)message.Json.DeepClone();
        json["room_id"] = otherRoom.RoomId;
        Rejected(room.Authorize(Pdu.Parse(json, RoomVersions.V12)), "create event");
    }

    // ---- auth_events ----

    [Theory, MemberData(nameof(AllVersions))]
    public void Auth_events_must_match_the_selection(string versionId)
    {
        var version = V(versionId);
        var room = RoomWithBob(version);
        var message = room.Build(Bob, "m.room.message", null, new JsonObject());
        Pdu[] Events(Pdu pdu) => pdu.AuthEvents.Select(id => room.Graph.Find(id)!).ToArray();
        Allowed(AuthEventSelection.CheckAuthEvents(message, Events(message), room.Graph.IsRejected));
        Assert.Equal(version.CreateEventInAuthEvents, message.AuthEvents.Contains(room.Create.EventId));

        var withJoinRules = Events(message).Append(room.Graph.Find(room.State[StateKey.JoinRules])!).ToArray();
        Rejected(AuthEventSelection.CheckAuthEvents(message, withJoinRules, room.Graph.IsRejected));

        var rejectedPowerLevels = room.Build(Alice, "m.room.power_levels", "", Levels(), rejected: true);
        var withRejected = Events(message).Where(e => e.Type != "m.room.power_levels").Append(rejectedPowerLevels).ToArray();
        Rejected(AuthEventSelection.CheckAuthEvents(message, withRejected, room.Graph.IsRejected), "rejected");

        var duplicate = Events(message).Append(room.Graph.Find(room.State[StateKey.PowerLevels])!).ToArray();
        Rejected(AuthEventSelection.CheckAuthEvents(message, duplicate, room.Graph.IsRejected));

        if (version.CreateEventInAuthEvents)
            Rejected(AuthEventSelection.CheckAuthEvents(message, Events(message).Where(e => e.Type != "m.room.create").ToArray(), room.Graph.IsRejected));
        else
            Rejected(AuthEventSelection.CheckAuthEvents(message, Events(message).Append(room.Create).ToArray(), room.Graph.IsRejected));

        var otherRoom = RoomWithBob(version);
        var foreign = Events(message).Where(e => e.Type != "m.room.power_levels").Append(otherRoom.Graph.Find(otherRoom.State[StateKey.PowerLevels])!).ToArray();
        Rejected(AuthEventSelection.CheckAuthEvents(message, foreign, room.Graph.IsRejected), "another room");
    }

    [Fact]
    public void Auth_event_selection_covers_members_join_rules_third_party_and_authorisers()
    {
        var content = new JsonObject
        {
            ["membership"] = "join", ["join_authorised_via_users_server"] = Carol,
        };
        Assert.Equal([StateKey.Create, StateKey.PowerLevels, StateKey.Member(Bob), StateKey.JoinRules, StateKey.Member(Carol)],
            AuthEventSelection.KeysFor(RoomVersions.V10, "m.room.member", Bob, Bob, content));
        Assert.Equal([StateKey.PowerLevels, StateKey.Member(Bob), StateKey.JoinRules],
            AuthEventSelection.KeysFor(RoomVersions.V7, "m.room.member", Bob, Bob, content).Skip(1));
        var invite = new JsonObject
        {
            ["membership"] = "invite",
            ["third_party_invite"] = new JsonObject { ["signed"] = new JsonObject { ["token"] = "tok" } },
        };
        Assert.Equal([StateKey.PowerLevels, StateKey.Member(Alice), StateKey.Member(Bob), StateKey.JoinRules, StateKey.ThirdPartyInvite("tok")],
            AuthEventSelection.KeysFor(RoomVersions.V12, "m.room.member", Bob, Alice, invite));
        Assert.Empty(AuthEventSelection.KeysFor(RoomVersions.V12, "m.room.create", "", Alice, []));
    }

    // ---- m.federate and aliases ----

    [Theory, MemberData(nameof(AllVersions))]
    public void Unfederated_rooms_refuse_remote_senders(string versionId)
    {
        var room = new TestRoom(V(versionId), createContent: new JsonObject { ["m.federate"] = false });
        room.Apply(room.Member(Alice, Alice, "join"));
        room.Apply(room.Build(Alice, "m.room.join_rules", "", new JsonObject { ["join_rule"] = "public" }));
        Rejected(room.Authorize(room.Member(Bob, Bob, "join")), "federate");
        Allowed(room.Authorize(room.Member(Dave, Dave, "join")));
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Aliases_events_have_their_own_rule_only_before_v6(string versionId)
    {
        var version = V(versionId);
        var room = TestRoom.WithDefaults(version);
        var ownServer = room.Build(Bob, "m.room.aliases", "b.test", new JsonObject { ["aliases"] = new JsonArray("#x:b.test") });
        var otherServer = room.Build(Bob, "m.room.aliases", "a.test", new JsonObject());
        Rejected(room.Authorize(otherServer));
        if (version.SpecialCaseAliasesAuth)
            Allowed(room.Authorize(ownServer));
        else
            Rejected(room.Authorize(ownServer), "not joined");
    }

    // ---- joins ----

    [Theory, MemberData(nameof(AllVersions))]
    public void Joins_follow_the_join_rule(string versionId)
    {
        var version = V(versionId);
        var room = new TestRoom(version);
        Allowed(room.Try(room.Member(Alice, Alice, "join")));
        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(version.PrivilegedCreators ? null : new JsonObject { [Alice] = 100 })));

        Rejected(room.Authorize(room.Member(Bob, Bob, "join")), "invite");
        room.Apply(room.Build(Alice, "m.room.join_rules", "", new JsonObject { ["join_rule"] = "public" }));
        Allowed(room.Authorize(room.Member(Bob, Bob, "join")));
        Rejected(room.Authorize(room.Member(Alice, Bob, "join")), "behalf");
        Allowed(room.Try(room.Member(Alice, Bob, "ban")));
        Rejected(room.Authorize(room.Member(Bob, Bob, "join")), "banned");
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Only_the_creator_may_join_right_after_create(string versionId)
    {
        var room = new TestRoom(V(versionId));
        Allowed(room.Authorize(room.Member(Alice, Alice, "join")));
        Rejected(room.Authorize(room.Member(Bob, Bob, "join")));
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Invite_only_rooms_admit_invited_users(string versionId)
    {
        var room = TestRoom.WithDefaults(V(versionId), "invite");
        Rejected(room.Authorize(room.Member(Bob, Bob, "join")));
        Allowed(room.Try(room.Member(Alice, Bob, "invite")));
        Allowed(room.Authorize(room.Member(Bob, Bob, "join")));
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Knock_join_rule_exists_from_v7(string versionId)
    {
        var version = V(versionId);
        var room = TestRoom.WithDefaults(version, "knock");
        var knock = room.Member(Bob, Bob, "knock");
        if (!version.KnockJoinRule)
        {
            Rejected(room.Authorize(knock), "membership");
            room.Apply(room.Member(Alice, Bob, "invite"));
            Rejected(room.Authorize(room.Member(Bob, Bob, "join")), "join rule");
            return;
        }
        Allowed(room.Try(knock));
        Rejected(room.Authorize(room.Member(Bob, Bob, "join")), "invite");
        Allowed(room.Authorize(room.Member(Bob, Bob, "leave")));
        Allowed(room.Try(room.Member(Alice, Bob, "invite")));
        Rejected(room.Authorize(room.Member(Bob, Bob, "knock")), "membership");
        Allowed(room.Authorize(room.Member(Bob, Bob, "join")));
        Rejected(room.Authorize(room.Member(Alice, Carol, "knock")), "behalf");
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Knocking_needs_a_knock_join_rule(string versionId)
    {
        var version = V(versionId);
        if (!version.KnockJoinRule)
            return;
        var room = TestRoom.WithDefaults(version, "public");
        Rejected(room.Authorize(room.Member(Bob, Bob, "knock")), "knock");
        var restricted = TestRoom.WithDefaults(version, "knock_restricted");
        if (version.KnockRestrictedJoinRule)
            Allowed(restricted.Authorize(restricted.Member(Bob, Bob, "knock")));
        else
            Rejected(restricted.Authorize(restricted.Member(Bob, Bob, "knock")));
        restricted.Apply(restricted.Member(Alice, Bob, "ban"));
        Rejected(restricted.Authorize(restricted.Member(Bob, Bob, "knock")));
    }

    private static Pdu AuthorisedJoin(TestRoom room, string user, string authoriser, bool signedByAuthoriser = true)
    {
        var join = room.Member(user, user, "join", new JsonObject { ["join_authorised_via_users_server"] = authoriser });
        if (signedByAuthoriser)
        {
            var server = EventSigning.ServerOf(authoriser)!;
            EventSigning.AddSignature(join.Json, room.Version, server, KeyOf(server));
        }
        return join;
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Restricted_joins_need_a_joined_authoriser_who_may_invite(string versionId)
    {
        var version = V(versionId);
        foreach (var rule in new[] { "restricted", "knock_restricted" })
        {
            var supported = rule == "restricted" ? version.RestrictedJoinRule : version.KnockRestrictedJoinRule;
            var room = TestRoom.WithDefaults(version, rule);
            var join = AuthorisedJoin(room, Bob, Alice);
            if (!supported)
            {
                Rejected(room.Authorize(join));
                continue;
            }
            Allowed(room.Authorize(join));
            Rejected(room.Authorize(room.Member(Bob, Bob, "join")), "join_authorised_via_users_server");
            Rejected(room.Authorize(AuthorisedJoin(room, Bob, Alice, signedByAuthoriser: false)), "signed");
            Rejected(room.Authorize(AuthorisedJoin(room, Bob, Carol)), "may not invite");

            room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(version.PrivilegedCreators ? null : new JsonObject { [Alice] = 100 }, ("invite", 10))));
            room.Apply(room.Member(Alice, Carol, "invite"));
            room.Apply(room.Member(Carol, Carol, "join"));
            Rejected(room.Authorize(AuthorisedJoin(room, Bob, Carol)), "may not invite");
            Allowed(room.Authorize(room.Member(Carol, Carol, "join")));
        }
    }

    // ---- invites ----

    [Theory, MemberData(nameof(AllVersions))]
    public void Invites_need_a_joined_sender_with_the_invite_level(string versionId)
    {
        var version = V(versionId);
        var room = RoomWithBob(version);
        Allowed(room.Authorize(room.Member(Bob, Carol, "invite")));
        Rejected(room.Authorize(room.Member(Carol, Dave, "invite")), "not joined");
        Rejected(room.Authorize(room.Member(Bob, Alice, "invite")), "already joined");
        room.Apply(room.Member(Alice, Carol, "ban"));
        Rejected(room.Authorize(room.Member(Bob, Carol, "invite")), "banned");

        var users = version.PrivilegedCreators ? new JsonObject { [Bob] = 50 } : new JsonObject { [Alice] = 100, [Bob] = 50 };
        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(users, ("invite", 60))));
        Rejected(room.Authorize(room.Member(Bob, Dave, "invite")), "may not invite");
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Third_party_invites_are_checked_against_the_invite_keys(string versionId)
    {
        var version = V(versionId);
        var room = RoomWithBob(version);
        var identityKey = Ed25519KeyPair.Generate("0");
        room.Apply(room.Build(Bob, "m.room.third_party_invite", "tok", new JsonObject
        {
            ["display_name"] = "c...@example.org", ["key_validity_url"] = "https://id.example/isvalid",
            ["public_key"] = identityKey.PublicKeyBase64,
        }));

        Pdu ThirdPartyInvite(string sender, string mxid, string token, Ed25519KeyPair key)
        {
            var signed = new JsonObject { ["mxid"] = mxid, ["sender"] = sender, ["token"] = token };
            JsonSigning.Sign(signed, "id.example", key);
            return room.Member(sender, mxid, "invite", new JsonObject
            {
                ["third_party_invite"] = new JsonObject { ["display_name"] = "c...", ["signed"] = signed },
            });
        }

        Allowed(room.Authorize(ThirdPartyInvite(Bob, Carol, "tok", identityKey)));
        Rejected(room.Authorize(ThirdPartyInvite(Bob, Carol, "tok", Ed25519KeyPair.Generate("0"))), "signed");
        Rejected(room.Authorize(ThirdPartyInvite(Alice, Carol, "tok", identityKey)), "did not send");
        Rejected(room.Authorize(ThirdPartyInvite(Bob, Carol, "other", identityKey)), "no m.room.third_party_invite");
        var mismatched = ThirdPartyInvite(Bob, Carol, "tok", identityKey);
        var json = (JsonObject)mismatched.Json.DeepClone();
        json["state_key"] = Dave;
        Rejected(room.Authorize(Pdu.Parse(json, version)), "mxid");
        var noSigned = room.Member(Bob, Carol, "invite", new JsonObject { ["third_party_invite"] = new JsonObject() });
        Rejected(room.Authorize(noSigned), "signed");
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Third_party_invite_events_need_the_invite_level(string versionId)
    {
        var version = V(versionId);
        var room = RoomWithBob(version);
        Allowed(room.Authorize(room.Build(Bob, "m.room.third_party_invite", "t", new JsonObject())));
        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(version.PrivilegedCreators ? new JsonObject { [Bob] = 50 } : new JsonObject { [Alice] = 100, [Bob] = 50 }, ("invite", 75))));
        Rejected(room.Authorize(room.Build(Bob, "m.room.third_party_invite", "t", new JsonObject())), "may not invite");
    }

    // ---- leave, kick, ban ----

    [Theory, MemberData(nameof(AllVersions))]
    public void Leaving_kicking_and_unbanning(string versionId)
    {
        var version = V(versionId);
        var room = RoomWithBob(version);
        Allowed(room.Authorize(room.Member(Bob, Bob, "leave")));
        Rejected(room.Authorize(room.Member(Carol, Carol, "leave")), "cannot leave");
        Allowed(room.Authorize(room.Member(Alice, Bob, "leave")));
        Rejected(room.Authorize(room.Member(Bob, Alice, "leave")), "kick");
        Rejected(room.Authorize(room.Member(Carol, Bob, "leave")), "not joined");

        room.Apply(room.Member(Dave, Dave, "join"));
        Allowed(room.Authorize(room.Member(Bob, Dave, "leave")));
        var users = version.PrivilegedCreators ? new JsonObject { [Bob] = 50 } : new JsonObject { [Alice] = 100, [Bob] = 50 };
        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(users, ("kick", 60))));
        Rejected(room.Authorize(room.Member(Bob, Dave, "leave")), "kick");

        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(users, ("ban", 60), ("kick", 40))));
        room.Apply(room.Member(Alice, Dave, "ban"));
        Rejected(room.Authorize(room.Member(Bob, Dave, "leave")), "unban");
        Allowed(room.Authorize(room.Member(Alice, Dave, "leave")));
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Bans_need_the_ban_level_and_a_lower_target(string versionId)
    {
        var version = V(versionId);
        var room = RoomWithBob(version);
        Allowed(room.Authorize(room.Member(Bob, Carol, "ban")));
        Rejected(room.Authorize(room.Member(Bob, Alice, "ban")), "ban");
        Rejected(room.Authorize(room.Member(Carol, Bob, "ban")), "not joined");
        Allowed(room.Authorize(room.Member(Alice, Bob, "ban")));
    }

    [Fact]
    public void Unknown_memberships_are_rejected()
    {
        var room = RoomWithBob(RoomVersions.V12);
        Rejected(room.Authorize(room.Member(Bob, Bob, "wander")), "unknown membership");
    }

    // ---- other events ----

    [Theory, MemberData(nameof(AllVersions))]
    public void Events_need_a_joined_sender_and_the_required_level(string versionId)
    {
        var version = V(versionId);
        var room = RoomWithBob(version);
        Allowed(room.Authorize(room.Build(Bob, "m.room.message", null, new JsonObject())));
        Rejected(room.Authorize(room.Build(Carol, "m.room.message", null, new JsonObject())), "not joined");
        Allowed(room.Authorize(room.Build(Bob, "m.room.topic", "", new JsonObject())));
        room.Apply(room.Member(Dave, Dave, "join"));
        Rejected(room.Authorize(room.Build(Dave, "m.room.topic", "", new JsonObject())), "power level");

        var users = version.PrivilegedCreators ? new JsonObject { [Bob] = 50 } : new JsonObject { [Alice] = 100, [Bob] = 50 };
        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(users, ("events_default", 10), ("events", new JsonObject { ["m.room.topic"] = 0 }))));
        Rejected(room.Authorize(room.Build(Dave, "m.room.message", null, new JsonObject())), "power level");
        Allowed(room.Authorize(room.Build(Dave, "m.room.topic", "", new JsonObject())));
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void State_keys_naming_users_belong_to_those_users(string versionId)
    {
        var room = RoomWithBob(V(versionId));
        Allowed(room.Authorize(room.Build(Bob, "org.example.status", Bob, new JsonObject())));
        Rejected(room.Authorize(room.Build(Bob, "org.example.status", Alice, new JsonObject())), "another user");
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Redactions_have_their_own_rule_only_in_v1_and_v2(string versionId)
    {
        var version = V(versionId);
        var room = RoomWithBob(version);
        room.Apply(room.Member(Dave, Dave, "join"));
        var bobsMessage = room.Apply(room.Build(Bob, "m.room.message", null, new JsonObject()));
        var davesMessage = room.Apply(room.Build(Dave, "m.room.message", null, new JsonObject()));

        JsonObject RedactionContent(Pdu target) => version.RedactsInContent ? new JsonObject { ["redacts"] = target.EventId } : new JsonObject();
        Pdu Redaction(string sender, Pdu target)
        {
            var pdu = room.Build(sender, "m.room.redaction", null, RedactionContent(target));
            if (version.RedactsInContent)
                return pdu;
            var json = (JsonObject)pdu.Json.DeepClone();
            json["redacts"] = target.EventId;
            return Pdu.Parse(json, version);
        }

        // Dave (a.test, level 0) redacting Bob's b.test message.
        var crossServer = Redaction(Dave, bobsMessage);
        if (version.EventIdDomainSignature)
        {
            Rejected(room.Authorize(crossServer), "redact");
            Allowed(room.Authorize(Redaction(Dave, davesMessage)));
        }
        else
            Allowed(room.Authorize(crossServer));
    }

    // ---- power levels ----

    [Theory, MemberData(nameof(AllVersions))]
    public void Power_level_values_follow_the_versions_number_rules(string versionId)
    {
        var version = V(versionId);
        var room = RoomWithBob(version);
        var users = version.PrivilegedCreators ? new JsonObject() : new JsonObject { [Alice] = 100 };

        var stringy = room.Build(Alice, "m.room.power_levels", "", Levels(users.DeepClone().AsObject(), ("ban", " +050 ")));
        if (version.IntegerOnlyPowerLevels) Rejected(room.Authorize(stringy), "malformed");
        else Allowed(room.Authorize(stringy));

        var floaty = room.Build(Alice, "m.room.power_levels", "",
            Levels(users.DeepClone().AsObject(), ("kick", JsonNode.Parse("50.57")!)));
        if (version.StrictCanonicalJson) Rejected(room.Authorize(floaty), "malformed");
        else Allowed(room.Authorize(floaty));

        var badUserKey = new JsonObject { ["not-a-user"] = 10 };
        if (!version.PrivilegedCreators) badUserKey[Alice] = 100;
        Rejected(room.Authorize(room.Build(Alice, "m.room.power_levels", "", Levels(badUserKey))), "malformed");
        Rejected(room.Authorize(room.Build(Alice, "m.room.power_levels", "", Levels(users.DeepClone().AsObject(), ("ban", "fifty")))), "malformed");
        Rejected(room.Authorize(room.Build(Alice, "m.room.power_levels", "", Levels(users.DeepClone().AsObject(), ("events", new JsonArray())))), "malformed");
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Power_level_changes_stay_within_the_senders_level(string versionId)
    {
        var version = V(versionId);
        var room = RoomWithBob(version);
        room.Apply(room.Member(Dave, Dave, "join"));
        var baseUsers = version.PrivilegedCreators ? new JsonObject { [Bob] = 50 } : new JsonObject { [Alice] = 100, [Bob] = 50 };
        JsonObject Users(params (string User, int Level)[] changes)
        {
            var users = baseUsers.DeepClone().AsObject();
            foreach (var (user, level) in changes)
                users[user] = level;
            return users;
        }
        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(Users(), ("events", new JsonObject { ["m.room.power_levels"] = 50 }))));

        Allowed(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(Users((Dave, 50)), ("events", new JsonObject { ["m.room.power_levels"] = 50 })))));
        Rejected(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(Users((Dave, 51)), ("events", new JsonObject { ["m.room.power_levels"] = 50 })))), "raise");
        Rejected(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(Users((Bob, 60)), ("events", new JsonObject { ["m.room.power_levels"] = 50 })))), "raise");
        Allowed(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(Users((Bob, 10)), ("events", new JsonObject { ["m.room.power_levels"] = 50 })))));
        Rejected(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(Users((Dave, 50)), ("ban", 70), ("events", new JsonObject { ["m.room.power_levels"] = 50 })))), "'ban'");
        Rejected(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(Users(), ("events", new JsonObject { ["m.room.power_levels"] = 50, ["m.room.name"] = 80 })))), "event levels");

        // Bob (50) may not touch an equal peer.
        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(Users((Dave, 50)), ("events", new JsonObject { ["m.room.power_levels"] = 50 }))));
        Rejected(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(Users((Dave, 0)), ("events", new JsonObject { ["m.room.power_levels"] = 50 })))), "at or above");

        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(Users(), ("events", new JsonObject { ["m.room.power_levels"] = 50, ["m.room.name"] = 80 }))));
        Rejected(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(Users(), ("events", new JsonObject { ["m.room.power_levels"] = 50 })))), "event levels");
        Allowed(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(Users(), ("events", new JsonObject { ["m.room.name"] = 80 })))));

        // notifications are guarded from v6.
        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(Users(), ("events", new JsonObject { ["m.room.power_levels"] = 50 }), ("notifications", new JsonObject { ["room"] = 80 }))));
        var lowerNotifications = room.Build(Bob, "m.room.power_levels", "", Levels(Users(), ("events", new JsonObject { ["m.room.power_levels"] = 50 }), ("notifications", new JsonObject { ["room"] = 10 })));
        if (version.LimitNotificationsPowerLevels) Rejected(room.Authorize(lowerNotifications), "notification");
        else Allowed(room.Authorize(lowerNotifications));
    }

    [Fact]
    public void V12_creators_have_infinite_power_and_cannot_be_listed()
    {
        var room = new TestRoom(RoomVersions.V12, createContent: new JsonObject { ["additional_creators"] = new JsonArray(Carol) });
        room.Apply(room.Member(Alice, Alice, "join"));
        room.Apply(room.Build(Alice, "m.room.join_rules", "", new JsonObject { ["join_rule"] = "public" }));
        Rejected(room.Authorize(room.Build(Alice, "m.room.power_levels", "", Levels(new JsonObject { [Alice] = 100 }))), "creators");
        Rejected(room.Authorize(room.Build(Alice, "m.room.power_levels", "", Levels(new JsonObject { [Carol] = 100 }))), "creators");
        Allowed(room.Try(room.Build(Alice, "m.room.power_levels", "", Levels(new JsonObject { [Bob] = 9_007_199_254_740_991 }))));
        room.Apply(room.Member(Bob, Bob, "join"));
        room.Apply(room.Member(Carol, Carol, "join"));

        // Bob has the highest possible number, yet cannot touch a creator; the additional creator can ban Bob.
        Rejected(room.Authorize(room.Member(Bob, Carol, "ban")), "ban");
        Allowed(room.Authorize(room.Member(Carol, Bob, "ban")));
        Rejected(room.Authorize(room.Member(Carol, Alice, "ban")), "ban");
        Allowed(room.Authorize(room.Build(Carol, "m.room.power_levels", "", Levels(new JsonObject { [Bob] = 0 }))));
    }

    [Theory]
    [InlineData("10"), InlineData("11")]
    public void Before_v12_creators_are_ordinary_users_once_power_levels_exist(string versionId)
    {
        var room = RoomWithBob(V(versionId));
        room.Apply(room.Build(Alice, "m.room.power_levels", "", Levels(new JsonObject { [Alice] = 100, [Bob] = 100 })));
        Rejected(room.Authorize(room.Member(Bob, Alice, "ban")), "ban");
        Rejected(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(new JsonObject { [Alice] = 0, [Bob] = 100 }))), "at or above");
        Allowed(room.Authorize(room.Build(Bob, "m.room.power_levels", "", Levels(new JsonObject { [Alice] = 100, [Bob] = 50 }))));
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void Without_power_levels_the_creator_has_100_and_others_0(string versionId)
    {
        var version = V(versionId);
        var room = new TestRoom(version);
        room.Apply(room.Member(Alice, Alice, "join"));
        room.Apply(room.Build(Alice, "m.room.join_rules", "", new JsonObject { ["join_rule"] = "public" }));
        room.Apply(room.Member(Bob, Bob, "join"));
        Allowed(room.Authorize(room.Build(Alice, "m.room.name", "", new JsonObject())));
        Rejected(room.Authorize(room.Build(Bob, "m.room.name", "", new JsonObject())), "power level");
        Allowed(room.Authorize(room.Build(Bob, "m.room.message", null, new JsonObject())));
    }
}
