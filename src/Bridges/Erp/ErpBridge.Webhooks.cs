using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Matrix.Bridges.Erp;

/// <summary>
/// Webhooks in: configured hooks (<c>POST /hooks/{id}</c>, authenticated by their provider's scheme, rendered by the
/// hook's transformation function, its templates, or its provider) and webhooks room admins created
/// (<c>POST /webhook/{secret token}</c>). Each accepted delivery is rendered on arrival and stored in the outbox,
/// under one lock so arrival order is queue order, before it is answered 202; every refusal is logged.
/// </summary>
public sealed partial class ErpBridge
{
    /// <summary>Maps <c>POST /hooks/{hookId}</c> and, when enabled, <c>POST /webhook/{token}</c>.</summary>
    public void MapWebhooks(IEndpointRouteBuilder app)
    {
        app.MapPost("/hooks/{hookId}", HandleWebhookAsync);
        if (_config.GenericWebhooks.Enabled)
            app.MapPost("/webhook/{token}", HandleGenericWebhookAsync);
    }

    private async Task HandleWebhookAsync(HttpContext context)
    {
        var hookId = context.Request.RouteValues["hookId"] as string ?? "";
        var hook = _config.Hooks.FirstOrDefault(h => h.Id == hookId);
        var where = $"hook {WebhookGuard.Printable(hookId)}";
        if (hook is null)
        {
            await RefuseAsync(context, where, "", new WebhookRejection(404, "no such hook"));
            return;
        }
        var provider = WebhookProvider.ByName[hook.Provider];
        var claimedId = context.Request.Headers[provider.DeliveryIdHeader].ToString();
        var body = await ReadBodyAsync(context.Request, _config.Webhooks.MaxBodyBytes, context.RequestAborted);
        if (body is null)
        {
            await RefuseAsync(context, where, claimedId, new WebhookRejection(413, $"the body is larger than {_config.Webhooks.MaxBodyBytes} bytes"));
            return;
        }
        JsonObject? content = null;
        await _webhookLock.WaitAsync(context.RequestAborted);
        try
        {
            var rejection = provider.Authenticate(hook.Secret, context.Request.Headers, body, out var delivery)
                ?? _guard.Check(hook.Id, delivery, hook.RateLimitPerMinute);
            var payload = rejection is null ? JsonObjectOf(body) : null;
            if (rejection is null && payload is null)
                rejection = new WebhookRejection(400, "the body is not a JSON object");
            if (rejection is null)
                try
                {
                    content = RenderHook(hook, provider, delivery, payload!);
                }
                catch (TransformException e)
                {
                    rejection = new WebhookRejection(422, $"the hook's transformation function failed: {e.Message}");
                }
            if (rejection is not null)
            {
                await RefuseAsync(context, where, claimedId, rejection);
                return;
            }
            if (content is not null)
                _outbox.Enqueue($"hook:{hook.Id}:{delivery.Id}", ToMatrix, Post(hook.Room, SystemUserId(hook.System), content), _clock.GetUtcNow());
            _guard.MarkSeen(hook.Id, delivery);
        }
        finally
        {
            _webhookLock.Release();
        }
        await AcceptAsync(context, content is not null, claimedId);
    }

    /// <summary>A hook's message: its transformation function, else its templates, else its provider's rendering; null posts nothing.</summary>
    private JsonObject? RenderHook(ErpBridgeConfig.HookSection hook, WebhookProvider provider, WebhookDelivery delivery, JsonObject payload)
    {
        if (_hookTransforms.TryGetValue(hook.Id, out var transform))
            return transform.Run(payload)?.ToContent();
        if (hook.Template.Length > 0)
            return RenderTemplates(hook, payload, delivery.Id);
        return provider.Render(delivery, payload)?.ToContent();
    }

    /// <summary>
    /// A webhook a room admin created: the URL's token is its only credential (never logged). A JSON object is
    /// rendered by the hook's transformation function or, without one, from its <c>text</c> (and <c>html</c>) or as
    /// the JSON itself; any other body is posted as text.
    /// </summary>
    private async Task HandleGenericWebhookAsync(HttpContext context)
    {
        var hook = _generic.Find(context.Request.RouteValues["token"] as string ?? "");
        if (hook is null)
        {
            await RefuseAsync(context, "room webhook (unknown URL)", "", new WebhookRejection(404, "no such webhook"));
            return;
        }
        var where = $"room webhook {hook.Name} in {hook.RoomId}";
        var body = await ReadBodyAsync(context.Request, _config.Webhooks.MaxBodyBytes, context.RequestAborted);
        if (body is null)
        {
            await RefuseAsync(context, where, "", new WebhookRejection(413, $"the body is larger than {_config.Webhooks.MaxBodyBytes} bytes"));
            return;
        }
        var deliveryId = Guid.NewGuid().ToString("N");
        JsonObject? content = null;
        await _webhookLock.WaitAsync(context.RequestAborted);
        try
        {
            var payload = JsonObjectOf(body);
            var rejection = _guard.TakeToken($"room webhook {hook.RoomId} {hook.Name}", _config.GenericWebhooks.RateLimitPerMinute, _clock.GetUtcNow());
            if (rejection is null && payload is null && context.Request.ContentType?.Contains("json", StringComparison.OrdinalIgnoreCase) == true)
                rejection = new WebhookRejection(400, "the body is not a JSON object");
            if (rejection is null)
                try
                {
                    content = RenderGeneric(hook, payload ?? new JsonObject { ["text"] = Encoding.UTF8.GetString(body) });
                }
                catch (Exception e) when (e is TransformException or FormatException)
                {
                    rejection = new WebhookRejection(422, $"the webhook's transformation function failed: {e.Message}");
                }
            if (rejection is not null)
            {
                await RefuseAsync(context, where, deliveryId, rejection);
                return;
            }
            if (content is not null)
                _outbox.Enqueue($"webhook:{hook.RoomId}:{hook.Name}:{deliveryId}", ToMatrix, Post(hook.RoomId, _service.Bot.UserId, content), _clock.GetUtcNow());
        }
        finally
        {
            _webhookLock.Release();
        }
        await AcceptAsync(context, content is not null, deliveryId);
    }

    private JsonObject? RenderGeneric(GenericWebhook hook, JsonObject payload)
    {
        if (hook.Transform is not null && _config.GenericWebhooks.AllowTransforms)
            return PayloadTransform.Parse(hook.Transform, _config.Transforms.Limits).Run(payload)?.ToContent();
        if (payload["text"] is JsonValue text && text.TryGetValue<string>(out var plain))
            return (payload["html"] is JsonValue html && html.TryGetValue<string>(out var formatted)
                ? new RenderedMessage(plain, formatted) : RenderedMessage.FromPlain(plain)).ToContent();
        var json = payload.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        return new RenderedMessage($"Received webhook data:\n{json}", $"<p>Received webhook data:</p><pre><code class=\"language-json\">{WebUtility.HtmlEncode(json)}</code></pre>").ToContent();
    }

    private async Task AcceptAsync(HttpContext context, bool posted, string deliveryId)
    {
        if (posted)
            Queued?.Invoke();
        context.Response.StatusCode = 202;
        await context.Response.WriteAsJsonAsync(new { status = posted ? "accepted" : "ignored", delivery = deliveryId });
    }

    private static JsonObject? JsonObjectOf(byte[] body)
    {
        try
        {
            return JsonNode.Parse(body) as JsonObject;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit, CancellationToken ct)
    {
        if (request.ContentLength > limit)
            return null;
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > limit)
                return null;
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    /// <summary>Answers a refused webhook and logs it: which hook, the delivery ID, status and reason, never the body or a secret.</summary>
    private async Task RefuseAsync(HttpContext context, string where, string deliveryId, WebhookRejection rejection)
    {
        Problem?.Invoke($"webhook refused: {where}, delivery {(deliveryId.Length == 0 ? "(none)" : WebhookGuard.Printable(deliveryId))}, "
            + $"from {context.Connection.RemoteIpAddress}: {rejection.Status} {rejection.Message}");
        context.Response.StatusCode = rejection.Status;
        if (rejection.RetryAfter is { } retryAfter)
            context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await context.Response.WriteAsJsonAsync(new { error = rejection.Message });
    }

    /// <summary>The message for a webhook: the templates applied to its body, the responsible user mentioned.</summary>
    private JsonObject RenderTemplates(ErpBridgeConfig.HookSection hook, JsonNode? body, string deliveryId)
    {
        var (text, html, mention) = _hookTemplates[hook.Id];
        var missing = MissingFields($"hook {hook.Id}, delivery {deliveryId}");
        var plain = text.Render(body, missing);
        var formatted = html?.Render(body, missing) ?? WebUtility.HtmlEncode(plain).Replace("\n", "<br>");
        var content = new JsonObject { ["msgtype"] = "m.text" };
        var mentioned = mention is null ? null : MatrixUser(_config.System(hook.System), mention.Render(body).Trim());
        if (mentioned is not null)
        {
            plain = $"{mentioned}: {plain}";
            formatted = $"<a href=\"https://matrix.to/#/{Uri.EscapeDataString(mentioned)}\">{WebUtility.HtmlEncode(mentioned)}</a>: {formatted}";
        }
        content["body"] = plain;
        content["format"] = "org.matrix.custom.html";
        content["formatted_body"] = formatted;
        content["m.mentions"] = mentioned is null ? new JsonObject() : new JsonObject { ["user_ids"] = new JsonArray(mentioned) };
        return content;
    }

    /// <summary>
    /// The Matrix user an ERP names: from the system's <c>users</c> map, a Matrix ID as is, else a local user by the
    /// name (or an e-mail address's local part); null when nothing usable is named.
    /// </summary>
    private string? MatrixUser(ErpBridgeConfig.SystemSection system, string name)
    {
        if (name.Length == 0)
            return null;
        if (system.Users.TryGetValue(name, out var mapped))
            return mapped;
        if (name.StartsWith('@') && name.Contains(':'))
            return name;
        var localpart = (name.Contains('@') ? name[..name.IndexOf('@')] : name).ToLowerInvariant();
        return Regex.IsMatch(localpart, "^[a-z0-9._=/+-]+$") ? $"@{localpart}:{_config.Homeserver.ServerName}" : null;
    }

}
