using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Matrix.Homeserver.ServerServer;

/// <summary>Checks the X-Matrix signature on a request from another server; any failure is 401 <c>M_UNAUTHORIZED</c>.</summary>
public sealed class FederationRequestAuth(ServerKeyService keys, HomeserverConfig config, FederationSender sender)
{
    public const int MaxBodyBytes = 10 * 1024 * 1024;

    /// <summary>The authenticated origin server, and the request body (null for requests without one).</summary>
    public async Task<(string Origin, JsonNode? Body)> AuthenticateAsync(HttpContext context)
    {
        if (!config.Federation.Enabled)
            throw MatrixException.Unrecognized();
        var body = await ReadBodyAsync(context);
        if (!XMatrix.TryParse(context.Request.Headers.Authorization.ToString(), out var header))
            throw Unauthorized("Missing or malformed X-Matrix authorization.");
        if (header.Destination is not null && header.Destination != config.ServerName)
            throw Unauthorized("The request is addressed to another server.");
        // A malformed origin is a bad request, not a failed signature (Synapse answers 400 too).
        if (!ServerName.TryParse(header.Origin, out _))
            throw new MatrixException(400, "M_UNAUTHORIZED", "The origin is not a server name.");
        var key = await keys.FindKeyAsync(header.Origin, header.KeyId, context.RequestAborted);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        if (key is not { } found || !found.Key.IsValidAt(now, found.FetchedAtTs, enforceValidUntil: true))
            throw Unauthorized($"No valid key {header.KeyId} for {header.Origin}.");
        var uri = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path + context.Request.QueryString;
        if (!XMatrix.Verify(header, context.Request.Method, uri, header.Destination, body, found.Key.PublicKey))
            throw Unauthorized("The request signature does not verify.");
        sender.DestinationIsUp(header.Origin);
        return (header.Origin, body);
    }

    private static MatrixException Unauthorized(string message) => new(401, "M_UNAUTHORIZED", message);

    private static async Task<JsonNode?> ReadBodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength is 0 || (context.Request.ContentLength is null && !context.Request.Headers.ContainsKey("Transfer-Encoding")))
            return null;
        var body = await JsonBody.ReadAllAsync(context, MaxBodyBytes);
        if (body.Length == 0)
            return null;
        JsonBody.EnsureUtf8(body.Span);
        try
        {
            return JsonNode.Parse(body.Span, documentOptions: new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException)
        {
            throw MatrixException.NotJson();
        }
    }
}
