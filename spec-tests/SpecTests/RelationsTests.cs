using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec: relationships (edits, annotations, references, threads): <c>/relations</c>, <c>/threads</c>, bundled
/// aggregations in <c>unsigned.m.relations</c>, duplicate annotations.
/// </summary>
public abstract class RelationsTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";
    private const string V1 = "/_matrix/client/v1";

    private async Task<(string RoomId, LoggedInUser Alice, LoggedInUser Bob)> RoomOfTwoAsync()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { invite = new[] { bob.UserId } });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken)).Status);
        return (roomId, alice, bob);
    }

    private async Task<MatrixResponse> SendAsync(LoggedInUser user, string roomId, string type, JsonObject content) =>
        await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/{type}/{Guid.NewGuid():N}", content, user.AccessToken);

    private async Task<string> SendOkAsync(LoggedInUser user, string roomId, string type, JsonObject content)
    {
        var response = await SendAsync(user, roomId, type, content);
        Assert.True(response.Status == 200, response.ToString());
        return response.Str("event_id");
    }

    private static JsonObject Relation(string relType, string eventId, JsonObject? extra = null)
    {
        var relation = new JsonObject { ["rel_type"] = relType, ["event_id"] = eventId };
        foreach (var (key, value) in extra ?? [])
            relation[key] = value?.DeepClone();
        return relation;
    }

    private static JsonObject Edit(string originalId, string newBody) => new()
    {
        ["msgtype"] = "m.text", ["body"] = "* " + newBody,
        ["m.new_content"] = new JsonObject { ["msgtype"] = "m.text", ["body"] = newBody },
        ["m.relates_to"] = Relation("m.replace", originalId),
    };

    private async Task<JsonNode> EventAsync(LoggedInUser user, string roomId, string eventId) =>
        (await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/event/{RoomTests.R(eventId)}", user.AccessToken)).Body!;

    [Fact]
    public async Task The_latest_valid_edit_is_bundled_and_the_original_content_is_kept()
    {
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        // An incremental sync before anything is sent: the server then knows which new events nothing relates to yet.
        var since = (await SyncTests.SyncAsync(C, bob))["next_batch"]!.GetValue<string>();
        since = (await SyncTests.SyncAsync(C, bob, since))["next_batch"]!.GetValue<string>();
        var original = await RoomTests.SendAsync(C, alice, roomId, "I like cake");
        var first = await SendOkAsync(alice, roomId, "m.room.message", Edit(original, "I like chocolate cake"));
        await Task.Delay(5);
        var second = await SendOkAsync(alice, roomId, "m.room.message", Edit(original, "I love chocolate cake"));
        await SendOkAsync(bob, roomId, "m.room.message", Edit(original, "bob was here"));
        await SendOkAsync(alice, roomId, "m.room.message", new JsonObject { ["body"] = "no new content", ["m.relates_to"] = Relation("m.replace", original) });

        var served = await EventAsync(bob, roomId, original);
        Assert.Equal("I like cake", served["content"]!["body"]!.GetValue<string>());
        var edit = served["unsigned"]!["m.relations"]!["m.replace"]!;
        Assert.Equal(second, edit["event_id"]!.GetValue<string>());
        Assert.Equal("I love chocolate cake", edit["content"]!["m.new_content"]!["body"]!.GetValue<string>());
        Assert.NotEqual(first, second);

        // The same bundle in /messages, /context and /sync.
        var messages = (await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=20", bob.AccessToken)).Body!["chunk"]!.AsArray();
        Assert.Equal(second, messages.Single(e => e!["event_id"]!.GetValue<string>() == original)!["unsigned"]!["m.relations"]!["m.replace"]!["event_id"]!.GetValue<string>());
        var context = (await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/context/{RoomTests.R(original)}", bob.AccessToken)).Body!;
        Assert.Equal(second, context["event"]!["unsigned"]!["m.relations"]!["m.replace"]!["event_id"]!.GetValue<string>());
        var sync = (await C.GetAsync($"{V3}/sync", bob.AccessToken)).Body!;
        var inSync = sync["rooms"]!["join"]![roomId]!["timeline"]!["events"]!.AsArray().Single(e => e!["event_id"]!.GetValue<string>() == original)!;
        Assert.Equal(second, inSync["unsigned"]!["m.relations"]!["m.replace"]!["event_id"]!.GetValue<string>());
        // And in an incremental sync, where the original and its edits are all new.
        var incremental = await SyncTests.SyncAsync(C, bob, since, filter: """{"room":{"timeline":{"limit":50}}}""");
        inSync = SyncTests.Timeline(incremental, roomId).Single(e => e["event_id"]!.GetValue<string>() == original);
        Assert.Equal(second, inSync["unsigned"]!["m.relations"]!["m.replace"]!["event_id"]!.GetValue<string>());

        // An edited event once redacted carries no edit.
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/redact/{RoomTests.R(original)}/{Guid.NewGuid():N}", new { }, alice.AccessToken)).Status);
        Assert.Null((await EventAsync(bob, roomId, original))["unsigned"]?["m.relations"]);
    }

    [Fact]
    public async Task Reactions_are_listed_not_aggregated_and_one_per_key_per_sender()
    {
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        var message = await RoomTests.SendAsync(C, alice, roomId, "ship it?");
        JsonObject Reaction(string key) => new() { ["m.relates_to"] = Relation("m.annotation", message, new JsonObject { ["key"] = key }) };
        var thumbsUp = await SendOkAsync(bob, roomId, "m.reaction", Reaction("👍"));
        await SendOkAsync(alice, roomId, "m.reaction", Reaction("👍"));
        await SendOkAsync(bob, roomId, "m.reaction", Reaction("🎉"));
        var duplicate = await SendAsync(bob, roomId, "m.reaction", Reaction("👍"));
        Assert.Equal(400, duplicate.Status);
        Assert.Equal("M_DUPLICATE_ANNOTATION", duplicate.Errcode);

        var annotations = (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/relations/{RoomTests.R(message)}/m.annotation", bob.AccessToken)).Body!;
        Assert.Equal(3, annotations["chunk"]!.AsArray().Count);
        var reactions = (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/relations/{RoomTests.R(message)}/m.annotation/m.reaction", bob.AccessToken)).Body!;
        Assert.Equal(3, reactions["chunk"]!.AsArray().Count);
        Assert.Empty((await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/relations/{RoomTests.R(message)}/m.annotation/m.other", bob.AccessToken)).Body!["chunk"]!.AsArray());
        Assert.Null((await EventAsync(bob, roomId, message))["unsigned"]?["m.relations"]);

        // Redacting the reaction frees its key.
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/redact/{RoomTests.R(thumbsUp)}/{Guid.NewGuid():N}", new { }, bob.AccessToken)).Status);
        await SendOkAsync(bob, roomId, "m.reaction", Reaction("👍"));
    }

    [Fact]
    public async Task Threads_are_summarised_listed_and_paginated()
    {
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        var carol = await C.RegisterAsync();
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = carol.UserId }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, carol.AccessToken)).Status);
        var root = await RoomTests.SendAsync(C, alice, roomId, "thread root");
        var replies = new List<string>();
        foreach (var (who, body) in new[] { (bob, "one"), (alice, "two"), (bob, "three") })
            replies.Add(await SendOkAsync(who, roomId, "m.room.message", new JsonObject
            {
                ["msgtype"] = "m.text", ["body"] = body, ["m.relates_to"] = Relation("m.thread", root),
            }));
        var reference = await SendOkAsync(carol, roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.text", ["body"] = "see above", ["m.relates_to"] = Relation("m.reference", root),
        });

        var served = await EventAsync(carol, roomId, root);
        var thread = served["unsigned"]!["m.relations"]!["m.thread"]!;
        Assert.Equal(3, thread["count"]!.GetValue<long>());
        Assert.Equal(replies[^1], thread["latest_event"]!["event_id"]!.GetValue<string>());
        Assert.Equal("three", thread["latest_event"]!["content"]!["body"]!.GetValue<string>());
        Assert.False(thread["current_user_participated"]!.GetValue<bool>());
        Assert.True((await EventAsync(bob, roomId, root))["unsigned"]!["m.relations"]!["m.thread"]!["current_user_participated"]!.GetValue<bool>());
        Assert.Equal(reference, served["unsigned"]!["m.relations"]!["m.reference"]!["chunk"]![0]!["event_id"]!.GetValue<string>());

        var all = (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/threads", carol.AccessToken)).Body!;
        Assert.Equal(root, Assert.Single(all["chunk"]!.AsArray())!["event_id"]!.GetValue<string>());
        Assert.Empty((await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/threads?include=participated", carol.AccessToken)).Body!["chunk"]!.AsArray());
        Assert.Single((await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/threads?include=participated", alice.AccessToken)).Body!["chunk"]!.AsArray());

        var path = $"{V1}/rooms/{RoomTests.R(roomId)}/relations/{RoomTests.R(root)}/m.thread";
        var page = (await C.GetAsync($"{path}?limit=2", carol.AccessToken)).Body!;
        Assert.Equal([replies[2], replies[1]], page["chunk"]!.AsArray().Select(e => e!["event_id"]!.GetValue<string>()).ToArray());
        var rest = (await C.GetAsync($"{path}?limit=2&from={page["next_batch"]!.GetValue<string>()}", carol.AccessToken)).Body!;
        Assert.Equal([replies[0]], rest["chunk"]!.AsArray().Select(e => e!["event_id"]!.GetValue<string>()).ToArray());
        Assert.Null(rest["next_batch"]);
        var forwards = (await C.GetAsync($"{path}?dir=f", carol.AccessToken)).Body!;
        Assert.Equal(replies, forwards["chunk"]!.AsArray().Select(e => e!["event_id"]!.GetValue<string>()).ToList());

        // With recurse, an edit of a thread reply is found from the root.
        var edit = await SendOkAsync(bob, roomId, "m.room.message", Edit(replies[0], "ONE"));
        var flat = (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/relations/{RoomTests.R(root)}", carol.AccessToken)).Body!;
        Assert.DoesNotContain(flat["chunk"]!.AsArray(), e => e!["event_id"]!.GetValue<string>() == edit);
        var deep = (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/relations/{RoomTests.R(root)}?recurse=true", carol.AccessToken)).Body!;
        Assert.Contains(deep["chunk"]!.AsArray(), e => e!["event_id"]!.GetValue<string>() == edit);
        Assert.True(deep["recursion_depth"]!.GetValue<int>() >= 2);
    }

    [Fact]
    public async Task Relations_of_unseen_or_unknown_events_are_refused()
    {
        var (roomId, alice, _) = await RoomOfTwoAsync();
        var outsider = await C.RegisterAsync();
        var message = await RoomTests.SendAsync(C, alice, roomId, "private");
        Assert.Equal(403, (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/relations/{RoomTests.R(message)}", outsider.AccessToken)).Status);
        Assert.Equal(403, (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/threads", outsider.AccessToken)).Status);
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/relations/{RoomTests.R("$nope")}", alice.AccessToken)).Errcode);
        Assert.Equal(400, (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/relations/{RoomTests.R(message)}?dir=up", alice.AccessToken)).Status);
        Assert.Equal(400, (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/threads?include=mine", alice.AccessToken)).Status);
        Assert.Equal(401, (await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/threads")).Status);
    }
}

public sealed class RelationsTestsSqlite(SqliteServer f) : RelationsTests(f), IClassFixture<SqliteServer>;
public sealed class RelationsTestsPostgres(PostgresServer f) : RelationsTests(f), IClassFixture<PostgresServer>;
