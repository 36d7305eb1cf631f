using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
using Matrix.Federation.Transport;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// A minimal remote homeserver played by the test: it publishes a signing key on loopback and sends X-Matrix signed
/// requests, so a test can call the server-server API of a real homeserver as another server would.
/// </summary>
public sealed class FakeRemoteServer : IAsyncDisposable
{
    private readonly LoopbackListener _listener;
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public Ed25519KeyPair Key { get; } = Ed25519KeyPair.Generate("fake");
    public string ServerName { get; }
    /// <summary>Events this server answers <c>event/{id}</c> with.</summary>
    public Dictionary<string, JsonObject> Events { get; } = [];
    /// <summary>The <c>state_ids</c> answer per event ID.</summary>
    public Dictionary<string, JsonObject> StateIds { get; } = [];
    public string? LastJoinEventId { get; private set; }
    /// <summary>False: its key server answers 404, as a server that is down would not answer at all.</summary>
    public bool ServesKeys { get; set; } = true;
    /// <summary>What <c>get_missing_events</c> answers (nothing by default, as after a long outage).</summary>
    public List<JsonObject> MissingEventsAnswer { get; } = [];
    /// <summary>When set, every <c>make_join</c> is refused with this status and error body.</summary>
    public (int Status, JsonObject Error)? MakeJoinRefusal { get; set; }
    /// <summary>Invites this server took through the v1 API (it knows no v2 invite, as servers before 2019), countersigned.</summary>
    public List<JsonObject> V1InvitesReceived { get; } = [];
    /// <summary>When set, v2 invites are countersigned and answered with what this makes of the signed event.</summary>
    public Func<JsonObject, JsonObject>? V2InviteAnswer { get; set; }
    /// <summary>When set, what its key server answers instead of its own key listing (a listing of other keys, say).</summary>
    public JsonObject? KeyServerAnswer { get; set; }
    /// <summary>What <c>user/devices/{userId}</c> answers per user (404 for others, as a server that is down would not answer).</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, JsonObject> UserDevices { get; } = new();
    /// <summary>How long <c>user/devices</c> takes to answer, as a slow server would.</summary>
    public TimeSpan UserDevicesDelay { get; set; }
    /// <summary>The users whose <c>user/devices</c> this server was asked for, in order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> UserDevicesRequests { get; } = new();
    /// <summary>A room this server hosts: it answers <c>make_join</c> and <c>send_join</c> (v2) for it.</summary>
    public HostedRoom? Hosted { get; private set; }
    /// <summary>What <c>backfill</c> answers (nothing by default).</summary>
    public List<JsonObject> BackfillAnswer { get; } = [];
    /// <summary>The events each <c>backfill</c> request asked to start from (its <c>v</c> parameters), in order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string[]> BackfillRequests { get; } = new();
    /// <summary>The PDUs of every transaction (<c>/send</c>) this server was sent.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<JsonObject> PdusReceived { get; } = new();

    public FakeRemoteServer()
    {
        _listener = new LoopbackListener(ServeAsync);
        ServerName = $"127.0.0.1:{_listener.Port}";
    }

    private async Task ServeAsync(HttpListenerContext context)
    {
        {
            var keys = new JsonObject
            {
                ["server_name"] = ServerName,
                ["valid_until_ts"] = DateTimeOffset.UtcNow.AddDays(1).ToUnixTimeMilliseconds(),
                ["verify_keys"] = new JsonObject { [Key.KeyId] = new JsonObject { ["key"] = Key.PublicKeyBase64 } },
                ["old_verify_keys"] = new JsonObject(),
            };
            JsonSigning.Sign(keys, ServerName, Key);
            if (MakeJoinRefusal is { } refusal && context.Request.Url!.AbsolutePath.StartsWith("/_matrix/federation/v1/make_join/", StringComparison.Ordinal))
            {
                await LoopbackListener.RespondAsync(context, refusal.Status, refusal.Error);
                return;
            }
            if (await AnswerInviteAsync(context))
                return;
            if (context.Request.Url!.AbsolutePath.StartsWith("/_matrix/federation/v1/user/devices/", StringComparison.Ordinal))
                await Task.Delay(UserDevicesDelay);
            var answer = Answer(context.Request, keys);
            await LoopbackListener.RespondAsync(context, answer is null ? 404 : 200,
                answer ?? new JsonObject { ["errcode"] = "M_NOT_FOUND", ["error"] = "Not found" });
        }
    }

    /// <summary>
    /// Transactions it takes (recording their PDUs); as a server of before room versions, it knows no v2 invite and
    /// countersigns v1 invites (version 1 rooms).
    /// </summary>
    private async Task<bool> AnswerInviteAsync(HttpListenerContext context)
    {
        var path = context.Request.Url!.AbsolutePath;
        if (path.StartsWith("/_matrix/federation/v2/invite/", StringComparison.Ordinal))
        {
            if (V2InviteAnswer is null)
            {
                await LoopbackListener.RespondAsync(context, 404, new JsonObject { ["errcode"] = "M_UNRECOGNIZED", ["error"] = "Unrecognized request" });
                return true;
            }
            var request = JsonNode.Parse(await new StreamReader(context.Request.InputStream).ReadToEndAsync())!;
            var version = RoomVersions.Find(request["room_version"]!.GetValue<string>())!;
            var invited = (JsonObject)request["event"]!.DeepClone();
            EventSigning.AddSignature(invited, version, ServerName, Key);
            await LoopbackListener.RespondAsync(context, 200, new JsonObject { ["event"] = V2InviteAnswer(invited) });
            return true;
        }
        if (path.StartsWith("/_matrix/federation/v1/send/", StringComparison.Ordinal))
        {
            var transaction = JsonNode.Parse(await new StreamReader(context.Request.InputStream).ReadToEndAsync())!;
            foreach (var pdu in transaction["pdus"]!.AsArray().OfType<JsonObject>())
                PdusReceived.Enqueue(pdu);
            await LoopbackListener.RespondAsync(context, 200, new JsonObject { ["pdus"] = new JsonObject() });
            return true;
        }
        if (!path.StartsWith("/_matrix/federation/v1/invite/", StringComparison.Ordinal))
            return false;
        var invite = JsonNode.Parse(await new StreamReader(context.Request.InputStream).ReadToEndAsync())!.AsObject();
        V1InvitesReceived.Add(invite);
        var signed = (JsonObject)invite.DeepClone();
        signed.Remove("unsigned");
        EventSigning.AddSignature(signed, RoomVersions.Find("1")!, ServerName, Key);
        var body = System.Text.Encoding.UTF8.GetBytes(new JsonArray(200, new JsonObject { ["event"] = signed }).ToJsonString());
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await context.Response.OutputStream.WriteAsync(body);
        context.Response.Close();
        return true;
    }

    /// <summary>The key server, stored events and state IDs, get_missing_events and backfill.</summary>
    private JsonObject? Answer(HttpListenerRequest request, JsonObject keys)
    {
        var path = Uri.UnescapeDataString(request.Url!.AbsolutePath);
        if (path == "/_matrix/key/v2/server")
            return ServesKeys ? KeyServerAnswer ?? keys : null;
        if (path.StartsWith("/_matrix/federation/v1/user/devices/", StringComparison.Ordinal))
        {
            var userId = path["/_matrix/federation/v1/user/devices/".Length..];
            UserDevicesRequests.Enqueue(userId);
            return UserDevices.TryGetValue(userId, out var devices) ? (JsonObject)devices.DeepClone() : null;
        }
        if (path.StartsWith("/_matrix/federation/v1/event/", StringComparison.Ordinal)
            && Events.TryGetValue(path["/_matrix/federation/v1/event/".Length..], out var evt))
            return new JsonObject { ["origin"] = ServerName, ["origin_server_ts"] = 0, ["pdus"] = new JsonArray(evt.DeepClone()) };
        if (path.StartsWith("/_matrix/federation/v1/state_ids/", StringComparison.Ordinal)
            && StateIds.TryGetValue(request.QueryString["event_id"] ?? "", out var ids))
            return (JsonObject)ids.DeepClone();
        if (path.StartsWith("/_matrix/federation/v1/get_missing_events/", StringComparison.Ordinal))
            return new JsonObject { ["events"] = new JsonArray(MissingEventsAnswer.Select(e => (JsonNode)e.DeepClone()).ToArray()) };
        if (Hosted is { } hosted && path.StartsWith($"/_matrix/federation/v1/make_join/{hosted.RoomId}/", StringComparison.Ordinal))
            return hosted.MakeJoinAnswer(path[$"/_matrix/federation/v1/make_join/{hosted.RoomId}/".Length..]);
        if (Hosted is { } joined && path.StartsWith($"/_matrix/federation/v2/send_join/{joined.RoomId}/", StringComparison.Ordinal))
            return new JsonObject
            {
                ["state"] = new JsonArray(joined.State.Select(e => (JsonNode)e.DeepClone()).ToArray()),
                ["auth_chain"] = new JsonArray(joined.State.Select(e => (JsonNode)e.DeepClone()).ToArray()),
            };
        if (path.StartsWith("/_matrix/federation/v1/backfill/", StringComparison.Ordinal))
        {
            BackfillRequests.Enqueue(request.QueryString.GetValues("v") ?? []);
            return new JsonObject
            {
                ["origin"] = ServerName, ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                ["pdus"] = new JsonArray(BackfillAnswer.Select(e => (JsonNode)e.DeepClone()).ToArray()),
            };
        }
        return null;
    }

    /// <summary>Sends a request signed as this server to <paramref name="target"/>.</summary>
    public async Task<MatrixResponse> SendAsync(HomeserverProcess target, HttpMethod method, string pathAndQuery, JsonNode? body = null)
    {
        using var request = new HttpRequestMessage(method, target.BaseUrl + pathAndQuery);
        request.Headers.TryAddWithoutValidation("Authorization", XMatrix.Sign(method.Method, pathAndQuery, ServerName, target.ServerName, body, Key));
        if (body is not null)
            request.Content = new StringContent(CanonicalJson.EncodeToString(body), Encoding.UTF8, "application/json");
        var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        JsonNode? json = null;
        if (text.Length > 0)
        {
            // Media answers are multipart: kept as the text they are.
            try { json = JsonNode.Parse(text); }
            catch (System.Text.Json.JsonException) { json = JsonValue.Create(text); }
        }
        return new MatrixResponse((int)response.StatusCode, json, response);
    }

    /// <summary>Sends a transaction of one EDU to <paramref name="target"/>.</summary>
    public async Task SendEduAsync(HomeserverProcess target, string eduType, JsonObject content)
    {
        var sent = await SendAsync(target, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", new JsonObject
        {
            ["origin"] = ServerName, ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), ["pdus"] = new JsonArray(),
            ["edus"] = new JsonArray(new JsonObject { ["edu_type"] = eduType, ["content"] = content }),
        });
        Assert.True(sent.Status == 200, sent.ToString());
    }

    /// <summary>Joins one of this server's users to a room on <paramref name="target"/> with make_join and send_join.</summary>
    public async Task<string> JoinAsync(HomeserverProcess target, string roomId, string localpart) =>
        (await SendMembershipAsync(target, roomId, localpart, "join")).UserId;

    /// <summary>
    /// make_join/send_join (v2) or make_knock/send_knock (v1) for one of this server's users, or with
    /// <paramref name="api"/> another version of the send endpoint; the user and what the send answered.
    /// </summary>
    public async Task<(string UserId, MatrixResponse Sent)> SendMembershipAsync(HomeserverProcess target, string roomId, string localpart, string membership,
        string? api = null)
    {
        var userId = $"@{localpart}:{ServerName}";
        var made = await SendAsync(target, HttpMethod.Get,
            $"/_matrix/federation/v1/make_{membership}/{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(userId)}?{string.Join('&', RoomVersions.All.Select(v => $"ver={v.Id}"))}");
        Assert.True(made.Status == 200, made.ToString());
        var version = RoomVersions.Find(made.Str("room_version"))!;
        var evt = (JsonObject)made.Body!["event"]!.DeepClone();
        evt["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        if (version.EventIdFormat == EventIdFormat.ServerChosen)
            evt["event_id"] = $"${Guid.NewGuid():N}:{ServerName}";
        EventSigning.HashAndSign(evt, version, ServerName, Key);
        var pdu = Pdu.Parse(evt, version);
        api ??= membership == "join" ? "v2" : "v1";
        var sent = await SendAsync(target, HttpMethod.Put, $"/_matrix/federation/{api}/send_{membership}/{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(pdu.EventId)}", evt);
        Assert.True(sent.Status == 200, sent.ToString());
        if (membership == "join")
            LastJoinEventId = pdu.EventId;
        Events[pdu.EventId] = evt;
        return (userId, sent);
    }

    /// <summary>
    /// Hosts a new public room of <paramref name="version"/> (create, its creator's join, power levels, join rules), whose
    /// create event states <paramref name="statedVersion"/> (a different one, to play a server that lies about it).
    /// </summary>
    public HostedRoom HostRoom(RoomVersion version, string? statedVersion = null)
    {
        var roomId = $"!{Guid.NewGuid():N}:{ServerName}";
        var creator = $"@creator:{ServerName}";
        var state = new List<JsonObject>();
        var ids = new List<string>();
        JsonObject Add(string type, string stateKey, JsonObject content, params int[] authIndexes)
        {
            var evt = new JsonObject
            {
                ["type"] = type, ["state_key"] = stateKey, ["sender"] = creator, ["room_id"] = roomId, ["content"] = content,
                ["depth"] = state.Count + 1, ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                ["prev_events"] = new JsonArray(ids.TakeLast(1).Select(id => (JsonNode)id).ToArray()),
                ["auth_events"] = new JsonArray(authIndexes.Select(i => (JsonNode)ids[i]).ToArray()),
            };
            EventSigning.HashAndSign(evt, version, ServerName, Key);
            state.Add(evt);
            ids.Add(Pdu.Parse(evt, version).EventId);
            return evt;
        }
        Add("m.room.create", "", new JsonObject { ["creator"] = creator, ["room_version"] = statedVersion ?? version.Id });
        Add("m.room.member", creator, new JsonObject { ["membership"] = "join" }, 0);
        Add("m.room.power_levels", "", new JsonObject { ["users"] = new JsonObject { [creator] = 100 } }, 0, 1);
        Add("m.room.join_rules", "", new JsonObject { ["join_rule"] = "public" }, 0, 1, 2);
        return Hosted = new HostedRoom(roomId, version, state, ids);
    }

    public ValueTask DisposeAsync() => _listener.DisposeAsync();
}

/// <summary>A room a <see cref="FakeRemoteServer"/> hosts: its state events in order, and their IDs.</summary>
public sealed record HostedRoom(string RoomId, RoomVersion Version, List<JsonObject> State, List<string> EventIds)
{
    /// <summary>The <c>make_join</c> template for <paramref name="userId"/>: after the last event, authorised by create, power levels and join rules.</summary>
    public JsonObject MakeJoinAnswer(string userId) => new()
    {
        ["room_version"] = Version.Id,
        ["event"] = new JsonObject
        {
            ["type"] = "m.room.member", ["state_key"] = userId, ["sender"] = userId, ["room_id"] = RoomId,
            ["content"] = new JsonObject { ["membership"] = "join" }, ["depth"] = State.Count + 1,
            ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            ["prev_events"] = new JsonArray(EventIds[^1]), ["auth_events"] = new JsonArray(EventIds[0], EventIds[2], EventIds[3]),
        },
    };
}
