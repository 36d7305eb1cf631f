using System.Text.Json.Nodes;
using Matrix.Homeserver.Push;

namespace Matrix.Homeserver.Tests;

public sealed class PushEvaluatorTests
{
    private static readonly PushContext Context = new(MemberCount: 2, DisplayName: "Bob", SenderLevel: 0, NotificationLevels: new Dictionary<string, long>());

    private static JsonObject Event(string body, JsonObject? extra = null)
    {
        var content = new JsonObject { ["msgtype"] = "m.text", ["body"] = body };
        foreach (var (key, value) in extra ?? [])
            content[key] = value?.DeepClone();
        return new JsonObject { ["type"] = "m.room.message", ["room_id"] = "!r:x", ["sender"] = "@a:x", ["content"] = content };
    }

    private static JsonObject Rules(string kind, JsonObject rule)
    {
        var set = new JsonObject();
        foreach (var k in PushRuleSet.Kinds)
            set[k] = new JsonArray();
        rule["enabled"] ??= true;
        rule["rule_id"] ??= "r";
        rule["actions"] ??= new JsonArray("notify");
        set[kind]!.AsArray().Add(rule);
        return set;
    }

    private static PushOutcome? Evaluate(JsonObject ruleset, JsonObject ev, PushContext context) =>
        PushEvaluator.Compile(ruleset).Evaluate(new PushEventView(ev), context);

    private static bool Matches(JsonObject ev, JsonObject condition) =>
        Evaluate(Rules("override", new JsonObject { ["conditions"] = new JsonArray(condition) }), ev, Context) is not null;

    [Theory]
    [InlineData("lunc?*", "Lunch plans", false, true)]
    [InlineData("lunc?*", "LUNCH", false, true)]
    [InlineData("lunc?*", " lunch", false, false)]
    [InlineData("lunc?*", "lunc", false, false)]
    [InlineData("ex*ple", "An example event.", true, true)]
    [InlineData("ex*ple", "exple", true, true)]
    [InlineData("ex*ple", "An exciting triple-whammy", true, true)]
    [InlineData("cake", "cakes", true, false)]
    [InlineData("a.b", "axb", false, false)]
    [InlineData("a.b", "A.B", false, true)]
    [InlineData("m.room.message", "m.room.messages", false, false)]
    [InlineData("alice", "Hi @Alice:example.org!", true, true)]
    [InlineData("alice", "malice", true, false)]
    [InlineData("alice", "alice_", true, false)]
    [InlineData("", "", false, true)]
    [InlineData("", "x", false, false)]
    public void Globs_follow_the_spec_examples(string pattern, string value, bool wordBoundary, bool matches) =>
        Assert.Equal(matches, PushEvaluator.Glob(pattern, value, wordBoundary));

    [Fact]
    public void Dotted_paths_take_escapes()
    {
        var ev = new JsonObject { ["content"] = new JsonObject { ["m.federate"] = true, ["a\\b"] = "x" } };
        Assert.True(PushEvaluator.Property(ev, "content.m\\.federate")!.GetValue<bool>());
        Assert.Equal("x", PushEvaluator.Property(ev, "content.a\\\\b")!.GetValue<string>());
        Assert.Null(PushEvaluator.Property(ev, "content.m.federate"));
    }

    [Fact]
    public void Property_conditions_compare_exactly_without_casting()
    {
        var ev = Event("hi", new JsonObject { ["flag"] = true, ["n"] = 3, ["tags"] = new JsonArray("a", 1, new JsonObject()) });
        Assert.True(Matches(ev, new JsonObject { ["kind"] = "event_property_is", ["key"] = "content.flag", ["value"] = true }));
        Assert.False(Matches(ev, new JsonObject { ["kind"] = "event_property_is", ["key"] = "content.flag", ["value"] = "true" }));
        Assert.True(Matches(ev, new JsonObject { ["kind"] = "event_property_is", ["key"] = "content.n", ["value"] = 3 }));
        Assert.False(Matches(ev, new JsonObject { ["kind"] = "event_property_is", ["key"] = "content.missing", ["value"] = null }));
        Assert.True(Matches(ev, new JsonObject { ["kind"] = "event_property_contains", ["key"] = "content.tags", ["value"] = 1 }));
        Assert.False(Matches(ev, new JsonObject { ["kind"] = "event_property_contains", ["key"] = "content.tags", ["value"] = "1" }));
        Assert.False(Matches(ev, new JsonObject { ["kind"] = "event_match", ["key"] = "content.flag", ["pattern"] = "*" }));
        Assert.False(Matches(ev, new JsonObject { ["kind"] = "no_such_kind" }));
    }

    [Fact]
    public void Member_count_display_name_and_sender_permission()
    {
        var ev = Event("hey bob!");
        Assert.True(Matches(ev, new JsonObject { ["kind"] = "room_member_count", ["is"] = "2" }));
        Assert.True(Matches(ev, new JsonObject { ["kind"] = "room_member_count", ["is"] = "<=2" }));
        Assert.False(Matches(ev, new JsonObject { ["kind"] = "room_member_count", ["is"] = ">2" }));
        Assert.True(Matches(ev, new JsonObject { ["kind"] = "contains_display_name" }));
        Assert.False(Matches(Event("bobby"), new JsonObject { ["kind"] = "contains_display_name" }));
        Assert.False(Matches(Event("bob_2 and xbob"), new JsonObject { ["kind"] = "contains_display_name" }));
        Assert.True(Matches(Event("bobby, BOB"), new JsonObject { ["kind"] = "contains_display_name" }));
        Assert.True(Matches(Event("Bob"), new JsonObject { ["kind"] = "contains_display_name" }));
        Assert.True(Matches(Event("(bob)"), new JsonObject { ["kind"] = "contains_display_name" }));
        Assert.False(Matches(ev, new JsonObject { ["kind"] = "sender_notification_permission", ["key"] = "room" }));
        Assert.True(Context with { SenderLevel = 50 } is var allowed && Evaluate(
            Rules("override", new JsonObject { ["conditions"] = new JsonArray(new JsonObject { ["kind"] = "sender_notification_permission", ["key"] = "room" }) }),
            ev, allowed) is not null);
    }

    [Fact]
    public void The_first_enabled_rule_decides_and_highlight_is_a_tweak()
    {
        var rules = PushRuleSet.FromStored(null).ToJson("@bob:x");
        var mention = Event("look", new JsonObject { ["m.mentions"] = new JsonObject { ["user_ids"] = new JsonArray("@bob:x") } });
        var outcome = Evaluate(rules, mention, Context)!;
        Assert.True(outcome.Notify);
        Assert.True(outcome.Highlight);
        var plain = Evaluate(rules, Event("hello"), Context)!;
        Assert.True(plain.Notify);
        Assert.False(plain.Highlight);
        var notice = Evaluate(rules, Event("bot", new JsonObject { ["msgtype"] = "m.notice" }), Context)!;
        Assert.False(notice.Notify);
        var disabled = Rules("override", new JsonObject { ["enabled"] = false, ["conditions"] = new JsonArray() });
        Assert.Null(Evaluate(disabled, Event("x"), Context));
    }

    [Fact]
    public void Only_an_enabled_rule_asking_for_the_display_name_needs_it()
    {
        var condition = new JsonObject { ["kind"] = "contains_display_name" };
        Assert.True(PushEvaluator.Compile(Rules("underride", new JsonObject { ["conditions"] = new JsonArray(condition.DeepClone()) })).UsesDisplayName);
        Assert.False(PushEvaluator.Compile(Rules("underride", new JsonObject { ["enabled"] = false, ["conditions"] = new JsonArray(condition.DeepClone()) })).UsesDisplayName);
        Assert.False(PushEvaluator.Compile(PushRuleSet.FromStored(null).ToJson("@bob:x")).UsesDisplayName);
    }

    [Fact]
    public void Users_with_the_default_rules_share_each_compiled_rule_except_those_naming_them()
    {
        var bob = PushEvaluator.Compile(PushRuleSet.FromStored(null).ToJson("@bob:x"));
        var alice = PushEvaluator.Compile(PushRuleSet.FromStored(null).ToJson("@alice:x"));
        var shared = bob.Rules.Intersect(alice.Rules, ReferenceEqualityComparer.Instance).Count();
        Assert.InRange(shared, bob.Rules.Count - 3, bob.Rules.Count - 1);
        var mentionsBob = Event("hi", new JsonObject { ["m.mentions"] = new JsonObject { ["user_ids"] = new JsonArray("@bob:x") } });
        Assert.True(bob.Evaluate(new PushEventView(mentionsBob), Context)!.Highlight);
        Assert.False(alice.Evaluate(new PushEventView(mentionsBob), Context)!.Highlight);
        var invite = new JsonObject { ["type"] = "m.room.member", ["state_key"] = "@alice:x", ["sender"] = "@a:x", ["content"] = new JsonObject { ["membership"] = "invite" } };
        Assert.Equal(PushEvaluator.Compile(PushRuleSet.FromStored(null).ToJson("@alice:x")).Rules.Count, alice.Rules.Count);
        Assert.True(alice.Evaluate(new PushEventView(invite), Context)!.Notify);
        Assert.False(bob.Evaluate(new PushEventView(invite), Context)?.Notify ?? false);
    }
}
