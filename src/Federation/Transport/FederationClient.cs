using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Json;

namespace Matrix.Federation.Transport;

/// <summary>A request to another server failed: it answered with an error, or could not be reached.</summary>
public sealed class FederationException(int status, string? errcode, string message, JsonObject? errorBody = null) : Exception(message)
{
    /// <summary>The remote server's error body, when it sent a JSON one (fields beside errcode, e.g. room_version).</summary>
    public JsonObject? ErrorBody { get; } = errorBody;

    /// <summary>The HTTP status, or 0 when the server could not be reached.</summary>
    public int Status { get; } = status;
    public string? Errcode { get; } = errcode;

    /// <summary>How a server that lacks an endpoint answers (Synapse's reading): 404 or 405 without a Matrix error, or M_UNRECOGNIZED.</summary>
    public bool IsUnknownEndpoint => Errcode == "M_UNRECOGNIZED" || (Status is 404 or 405 && Errcode is null);
}

/// <summary>Requests to other homeservers: discovery, X-Matrix signed requests, canonical JSON bodies, JSON answers.</summary>
public sealed class FederationClient(HttpClient http, ServerNameResolver resolver, string serverName, Ed25519KeyPair key)
{
    public string ServerName => serverName;

    /// <summary>Sends a request signed with this server's key; <paramref name="pathAndQuery"/> starts with <c>/_matrix/</c>.</summary>
    public Task<JsonNode?> SendAsync(HttpMethod method, string destination, string pathAndQuery, JsonNode? body, CancellationToken ct) =>
        SendCoreAsync(method, destination, pathAndQuery, body, signed: true, ct);

    /// <summary>An unauthenticated GET (the key server endpoints).</summary>
    public Task<JsonNode?> GetUnsignedAsync(string destination, string pathAndQuery, CancellationToken ct) =>
        SendCoreAsync(HttpMethod.Get, destination, pathAndQuery, null, signed: false, ct);

    /// <summary>
    /// A GET whose answer is streamed (media): the caller reads and disposes the response, whatever its status. Unreachable
    /// servers raise <see cref="FederationException"/> with status 0.
    /// </summary>
    public Task<HttpResponseMessage> GetStreamingAsync(string destination, string pathAndQuery, bool signed, CancellationToken ct) =>
        SendRawAsync(HttpMethod.Get, destination, pathAndQuery, null, signed, HttpCompletionOption.ResponseHeadersRead, ct);

    private async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string destination, string pathAndQuery, JsonNode? body,
        bool signed, HttpCompletionOption completion, CancellationToken ct)
    {
        ResolvedServer resolved;
        try
        {
            resolved = await resolver.ResolveAsync(destination, ct);
        }
        catch (FormatException)
        {
            throw new FederationException(0, null, $"'{destination}' is not a server name");
        }
        using var request = new HttpRequestMessage(method, new Uri(resolved.BaseUri, pathAndQuery));
        request.Headers.Host = resolved.HostHeader;
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (signed)
            request.Headers.TryAddWithoutValidation("Authorization", XMatrix.Sign(method.Method, pathAndQuery, serverName, destination, body, key));
        if (body is not null)
            request.Content = new ByteArrayContent(CanonicalJson.Encode(body)) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } };
        try
        {
            return await http.SendAsync(request, completion, ct);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            throw new FederationException(0, null, $"{destination} is unreachable: {e.Message}");
        }
    }

    private async Task<JsonNode?> SendCoreAsync(HttpMethod method, string destination, string pathAndQuery, JsonNode? body, bool signed,
        CancellationToken ct)
    {
        var response = await SendRawAsync(method, destination, pathAndQuery, body, signed, HttpCompletionOption.ResponseContentRead, ct);
        using (response)
        {
            var bytes = await response.Content.ReadAsByteArrayAsync(ct);
            JsonNode? json = null;
            try
            {
                json = bytes.Length == 0 ? null : JsonNode.Parse(bytes);
            }
            catch (JsonException)
            {
                if (response.IsSuccessStatusCode)
                    throw new FederationException((int)response.StatusCode, null, $"{destination} answered with invalid JSON");
            }
            if (!response.IsSuccessStatusCode)
            {
                var errcode = json is JsonObject error && error["errcode"] is JsonValue code && code.TryGetValue<string>(out var text) ? text : null;
                var reason = json is JsonObject answer && answer["error"] is JsonValue said && said.TryGetValue<string>(out var message)
                    ? ": " + message[..Math.Min(message.Length, 300)]
                    : "";
                throw new FederationException((int)response.StatusCode, errcode,
                    $"{destination} answered {(int)response.StatusCode}{(errcode is null ? "" : " " + errcode)}{reason}", json as JsonObject);
            }
            return json;
        }
    }
}
