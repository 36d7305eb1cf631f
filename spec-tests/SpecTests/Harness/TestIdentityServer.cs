using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Json;
using Matrix.Federation.Transport;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// An identity server stand-in (identity service API v2) on loopback plain HTTP: 3PIDs it validated itself
/// (<see cref="Validate"/>, as SyTest's), binding and unbinding (the unbind request's X-Matrix signature checked against
/// the homeserver's published key), hashed and plain lookups, stored invites with Ed25519 keys and their validity
/// URL, and the <c>/3pid/onbind</c> call to a homeserver when a 3PID is bound.
/// </summary>
public sealed class TestIdentityServer : IAsyncDisposable
{
    public const string AccessToken = "identity-access-token";
    private const string Pepper = "spec-pepper";
    private readonly LoopbackListener _listener;
    private readonly ConcurrentDictionary<string, (string Medium, string Address, string ClientSecret)> _sessions = new();
    private readonly ConcurrentDictionary<(string Medium, string Address), string> _bindings = new();
    private readonly ConcurrentDictionary<(string Medium, string Address), List<JsonObject>> _invites = new();
    private readonly ConcurrentBag<string> _revokedKeys = [];
    private int _nextId;

    public Ed25519KeyPair LongTermKey { get; } = Ed25519KeyPair.Generate("0");
    public Ed25519KeyPair EphemeralKey { get; } = Ed25519KeyPair.Generate("ephemeral");
    /// <summary>The homeserver's base URL, where the unbind signature's key is fetched.</summary>
    public string? HomeserverBaseUrl { get; set; }
    public string Name => $"127.0.0.1:{_listener.Port}";

    public TestIdentityServer() => _listener = new LoopbackListener(HandleAsync);

    /// <summary>A session that validated <paramref name="address"/> for <paramref name="clientSecret"/>; its sid.</summary>
    public string Validate(string medium, string address, string clientSecret)
    {
        var sid = $"is-session-{Interlocked.Increment(ref _nextId)}";
        _sessions[sid] = (medium, address, clientSecret);
        return sid;
    }

    public string? Lookup(string medium, string address) => _bindings.GetValueOrDefault((medium, address));

    public void BindOutOfBand(string medium, string address, string mxid) => _bindings[(medium, address)] = mxid;

    /// <summary>Stops vouching for a public key (its validity URL answers false).</summary>
    public void Revoke(Ed25519KeyPair key) => _revokedKeys.Add(UnpaddedBase64.Encode(key.PublicKey));

    /// <summary>Signs a JSON object with <paramref name="key"/> as this identity server.</summary>
    public void Sign(JsonObject obj, Ed25519KeyPair key) => JsonSigning.Sign(obj, Name, key);

    /// <summary>
    /// Binds a 3PID and tells the homeserver (<c>/_matrix/federation/v1/3pid/onbind</c>, with POST as Sydent does unless
    /// <paramref name="method"/> says otherwise) with every pending invite for it, each signed (mxid, token) with
    /// <paramref name="signingKey"/> (the long-term key by default).
    /// </summary>
    public async Task<HttpResponseMessage> BindAndNotifyAsync(string homeserverBaseUrl, string medium, string address, string mxid,
        Ed25519KeyPair? signingKey = null, HttpMethod? method = null)
    {
        _bindings[(medium, address)] = mxid;
        var invites = new JsonArray();
        foreach (var invite in _invites.GetValueOrDefault((medium, address)) ?? [])
        {
            var signed = new JsonObject { ["mxid"] = mxid, ["token"] = invite["token"]!.DeepClone() };
            Sign(signed, signingKey ?? LongTermKey);
            var entry = (JsonObject)invite.DeepClone();
            entry["mxid"] = mxid;
            entry["signed"] = signed;
            invites.Add(entry);
        }
        var body = new JsonObject { ["medium"] = medium, ["address"] = address, ["mxid"] = mxid, ["invites"] = invites };
        Sign(body, LongTermKey);
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(method ?? HttpMethod.Post, $"{homeserverBaseUrl}/_matrix/federation/v1/3pid/onbind")
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        return await http.SendAsync(request);
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        var path = context.Request.Url!.AbsolutePath;
        var body = context.Request.HasEntityBody ? JsonNode.Parse(await new StreamReader(context.Request.InputStream).ReadToEndAsync()) as JsonObject : null;
        if (path.StartsWith("/_matrix/identity/v2/pubkey/isvalid", StringComparison.Ordinal))
        {
            var key = context.Request.QueryString["public_key"] ?? "";
            var known = key == UnpaddedBase64.Encode(LongTermKey.PublicKey) || key == UnpaddedBase64.Encode(EphemeralKey.PublicKey);
            await LoopbackListener.RespondAsync(context, 200, new JsonObject { ["valid"] = known && !_revokedKeys.Contains(key) });
            return;
        }
        if (path == "/_matrix/identity/v2/3pid/unbind")
        {
            await UnbindAsync(context, body!);
            return;
        }
        if (context.Request.Headers["Authorization"] != $"Bearer {AccessToken}")
        {
            await LoopbackListener.RespondAsync(context, 401, new JsonObject { ["errcode"] = "M_UNAUTHORIZED", ["error"] = "bad token" });
            return;
        }
        switch (path)
        {
            case "/_matrix/identity/v2/hash_details":
                await LoopbackListener.RespondAsync(context, 200, new JsonObject { ["algorithms"] = new JsonArray("none", "sha256"), ["lookup_pepper"] = Pepper });
                return;
            case "/_matrix/identity/v2/lookup":
            {
                var mappings = new JsonObject();
                foreach (var entry in body!["addresses"]!.AsArray().Select(a => a!.GetValue<string>()))
                {
                    var match = body["algorithm"]!.GetValue<string>() == "sha256"
                        ? _bindings.FirstOrDefault(b => Hash(b.Key.Address, b.Key.Medium) == entry)
                        : _bindings.FirstOrDefault(b => $"{b.Key.Address} {b.Key.Medium}" == entry);
                    if (match.Value is not null)
                        mappings[entry] = match.Value;
                }
                await LoopbackListener.RespondAsync(context, 200, new JsonObject { ["mappings"] = mappings });
                return;
            }
            case "/_matrix/identity/v2/3pid/bind":
            {
                if (!_sessions.TryGetValue(body!["sid"]!.GetValue<string>(), out var session) || session.ClientSecret != body["client_secret"]!.GetValue<string>())
                {
                    await LoopbackListener.RespondAsync(context, 400, new JsonObject { ["errcode"] = "M_NO_VALID_SESSION", ["error"] = "no session" });
                    return;
                }
                var mxid = body["mxid"]!.GetValue<string>();
                _bindings[(session.Medium, session.Address)] = mxid;
                var answer = new JsonObject
                {
                    ["medium"] = session.Medium, ["address"] = session.Address, ["mxid"] = mxid,
                    ["not_before"] = 0, ["not_after"] = 4582425849161, ["ts"] = 0,
                };
                Sign(answer, LongTermKey);
                await LoopbackListener.RespondAsync(context, 200, answer);
                return;
            }
            case "/_matrix/identity/v2/store-invite":
            {
                var token = $"invite-token-{Interlocked.Increment(ref _nextId)}";
                var key = (body!["medium"]!.GetValue<string>(), body["address"]!.GetValue<string>());
                var invite = new JsonObject
                {
                    ["medium"] = key.Item1, ["address"] = key.Item2, ["room_id"] = body["room_id"]!.DeepClone(),
                    ["sender"] = body["sender"]!.DeepClone(), ["token"] = token,
                };
                lock (_invites)
                    _invites.GetOrAdd(key, _ => []).Add(invite);
                var validity = $"http://{Name}/_matrix/identity/v2/pubkey/isvalid";
                await LoopbackListener.RespondAsync(context, 200, new JsonObject
                {
                    ["token"] = token,
                    ["display_name"] = "B***",
                    ["public_keys"] = new JsonArray(
                        new JsonObject { ["public_key"] = UnpaddedBase64.Encode(LongTermKey.PublicKey), ["key_validity_url"] = validity },
                        new JsonObject { ["public_key"] = UnpaddedBase64.Encode(EphemeralKey.PublicKey), ["key_validity_url"] = validity }),
                });
                return;
            }
            default:
                await LoopbackListener.RespondAsync(context, 404, new JsonObject { ["errcode"] = "M_UNRECOGNIZED", ["error"] = path });
                return;
        }
    }

    /// <summary>Unbind is authorised by the homeserver's X-Matrix signature, checked with its key from /_matrix/key/v2/server.</summary>
    private async Task UnbindAsync(HttpListenerContext context, JsonObject body)
    {
        var mxid = body["mxid"]!.GetValue<string>();
        if (!XMatrix.TryParse(context.Request.Headers["Authorization"], out var header) || !mxid.EndsWith(":" + header.Origin, StringComparison.Ordinal))
        {
            await LoopbackListener.RespondAsync(context, 401, new JsonObject { ["errcode"] = "M_UNAUTHORIZED", ["error"] = "no signature" });
            return;
        }
        using var http = new HttpClient();
        var keys = JsonNode.Parse(await http.GetStringAsync($"{HomeserverBaseUrl}/_matrix/key/v2/server"))!;
        if (!UnpaddedBase64.TryDecode(keys["verify_keys"]![header.KeyId]!["key"]!.GetValue<string>(), out var publicKey)
            || !XMatrix.Verify(header, "POST", context.Request.Url!.PathAndQuery, Name, body, publicKey))
        {
            await LoopbackListener.RespondAsync(context, 401, new JsonObject { ["errcode"] = "M_UNAUTHORIZED", ["error"] = "bad signature" });
            return;
        }
        var key = (body["threepid"]!["medium"]!.GetValue<string>(), body["threepid"]!["address"]!.GetValue<string>());
        if (!_bindings.TryGetValue(key, out var bound) || bound != mxid)
        {
            await LoopbackListener.RespondAsync(context, 404, new JsonObject { ["errcode"] = "M_NOT_FOUND", ["error"] = "not bound" });
            return;
        }
        _bindings.TryRemove(key, out _);
        await LoopbackListener.RespondAsync(context, 200, new JsonObject());
    }

    private static string Hash(string address, string medium) =>
        UnpaddedBase64.EncodeUrlSafe(SHA256.HashData(Encoding.UTF8.GetBytes($"{address} {medium} {Pepper}")));

    public ValueTask DisposeAsync() => _listener.DisposeAsync();
}
