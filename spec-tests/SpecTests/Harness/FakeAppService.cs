using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// An application service played by the test: an HTTP listener on loopback that records every request the
/// homeserver makes (transactions, queries, pings) with its Authorization header and query string, and answers through
/// <see cref="Handler"/> (200 {} by default). <see cref="RegistrationYaml"/> is its registration file.
/// </summary>
public sealed class FakeAppService : IAsyncDisposable
{
    public sealed record Request(string Method, string Path, string? Authorization, JsonNode? Body, string Query = "");

    private readonly LoopbackListener _listener;
    private readonly List<Request> _requests = [];

    public string Id { get; } = MatrixClient.UniqueName("as");
    public string AsToken { get; } = Guid.NewGuid().ToString("N");
    public string HsToken { get; } = Guid.NewGuid().ToString("N");
    public string Url { get; }
    /// <summary>Answers a request: status and body. The default accepts everything.</summary>
    public Func<Request, Task<(int Status, JsonNode? Body)>> Handler { get; set; } = _ => Task.FromResult<(int, JsonNode?)>((200, new JsonObject()));

    public FakeAppService()
    {
        _listener = new LoopbackListener(AnswerAsync);
        Url = $"http://127.0.0.1:{_listener.Port}";
    }

    public string RegistrationYaml(string userRegex, string aliasRegex, bool receiveEphemeral = false, bool deviceData = false) => $"""
        id: {Id}
        url: {Url}
        as_token: {AsToken}
        hs_token: {HsToken}
        sender_localpart: {Id}bot
        rate_limited: false
        protocols: [chatnet]
        receive_ephemeral: {(receiveEphemeral ? "true" : "false")}
        org.matrix.msc3202: {(deviceData ? "true" : "false")}
        namespaces:
          users:
            - exclusive: true
              regex: '{userRegex}'
          aliases:
            - exclusive: true
              regex: '{aliasRegex}'
          rooms: []
        """;

    public List<Request> Requests
    {
        get { lock (_requests) return [.. _requests]; }
    }

    /// <summary>The events of every transaction the service accepted, in order, each transaction once.</summary>
    public List<JsonObject> AcceptedEvents { get; } = [];

    private readonly HashSet<string> _acceptedTxns = [];

    private async Task AnswerAsync(HttpListenerContext context)
    {
        using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
        var text = await reader.ReadToEndAsync();
        var request = new Request(context.Request.HttpMethod, Uri.UnescapeDataString(context.Request.Url!.AbsolutePath), context.Request.Headers["Authorization"],
            text.Length > 0 ? JsonNode.Parse(text) : null, context.Request.Url.Query);
        lock (_requests)
            _requests.Add(request);
        var (status, body) = await Handler(request);
        if (status == 200 && request.Method == "PUT" && request.Path.StartsWith("/_matrix/app/v1/transactions/"))
            lock (AcceptedEvents)
                if (_acceptedTxns.Add(request.Path))
                    AcceptedEvents.AddRange(request.Body!["events"]!.AsArray().Select(e => e!.AsObject()));
        await LoopbackListener.RespondAsync(context, status, body ?? new JsonObject());
    }

    public ValueTask DisposeAsync() => _listener.DisposeAsync();
}
