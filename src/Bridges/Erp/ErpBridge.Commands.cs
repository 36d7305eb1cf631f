using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Erp;

/// <summary>
/// Room commands mapped to ERP calls: <c>!erp order 4711</c> calls the configured endpoint with the arguments put
/// into its path (URL-escaped, checked against the command's pattern) and answers, as the system's user in the
/// command's thread, with the reply template applied to the JSON answer.
/// </summary>
public sealed partial class ErpBridge
{
    public const string Prefix = "!erp";

    private async Task HandleMessageAsync(RoomEvent message, MessageContent content, CancellationToken ct)
    {
        var text = content.Body.Trim();
        if (!text.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) || (text.Length > Prefix.Length && !char.IsWhiteSpace(text[Prefix.Length])))
            return;
        var words = text[Prefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length > 0 && words[0].Split('\n')[0].Equals(WebhookCommand, StringComparison.OrdinalIgnoreCase))
        {
            await HandleWebhookCommandAsync(message, text[Prefix.Length..].Trim(), ct);
            return;
        }
        var available = _config.Commands.Where(c => c.Rooms.Count == 0 || c.Rooms.Any(r => _rooms.Names(r, message.RoomId))).ToList();
        var command = words.Length == 0 ? null : available.FirstOrDefault(c => c.Name.Equals(words[0], StringComparison.OrdinalIgnoreCase));
        if (command is null)
        {
            var list = (available.Count == 0 ? "No ERP commands are available in this room."
                : "ERP commands here:\n" + string.Join("\n", available.Select(Usage))) + (_config.GenericWebhooks.Enabled ? "\n" + WebhookUsage : "");
            await ReplyAsync(message, _service.Bot, list, null, ct);
            return;
        }
        var system = _config.System(command.System);
        var speaker = _service.Intent(SystemUserId(system.Id));
        try
        {
            await speaker.EnsureJoinedAsync(message.RoomId, ct);
        }
        catch (MatrixRequestException)
        {
            speaker = _service.Bot;
        }
        var args = words.Skip(1).ToArray();
        var expected = Regex.Matches(command.Path, @"\{(\d+)\}").Select(m => int.Parse(m.Groups[1].Value) + 1).DefaultIfEmpty(0).Max();
        if (args.Length != expected || (command.ArgumentPattern is { } pattern && args.Any(a => !Regex.IsMatch(a, pattern, RegexOptions.None, TimeSpan.FromSeconds(1)))))
        {
            await ReplyAsync(message, speaker, "Usage: " + Usage(command), null, ct);
            return;
        }
        var path = Regex.Replace(command.Path, @"\{(\d+)\}", m => Uri.EscapeDataString(args[int.Parse(m.Groups[1].Value)]));
        var client = new ErpClient(_http, system);
        string reply;
        string? html = null;
        try
        {
            var answer = await client.SendAsync(command.Method, path, null, null, ct);
            if (answer.IsSuccess)
            {
                var (textTemplate, htmlTemplate) = _replyTemplates[command.Name];
                var missing = MissingFields($"command {command.Name}");
                reply = textTemplate.Render(answer.Json, missing);
                html = htmlTemplate?.Render(answer.Json, missing);
            }
            else
                reply = answer.Status == 404 ? $"{client.DisplayName} has no such record ({string.Join(' ', args)})." : $"{client.DisplayName} answered HTTP {answer.Status}; try again later.";
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            reply = $"{client.DisplayName} cannot be reached right now; try again later.";
        }
        await ReplyAsync(message, speaker, reply, html, ct);
    }

    private static string Usage(ErpBridgeConfig.CommandSection command) =>
        $"{Prefix} {command.Name}" + (command.Usage.Length > 0 ? " " + command.Usage : "");

    private async Task ReplyAsync(RoomEvent message, Intent speaker, string text, string? html, CancellationToken ct)
    {
        var content = new JsonObject
        {
            ["msgtype"] = "m.notice",
            ["body"] = text,
            ["format"] = "org.matrix.custom.html",
            ["formatted_body"] = html ?? WebUtility.HtmlEncode(text).Replace("\n", "<br>"),
            ["m.relates_to"] = new JsonObject
            {
                ["rel_type"] = "m.thread",
                ["event_id"] = message.Message?.ThreadRoot ?? message.EventId,
                ["is_falling_back"] = true,
                ["m.in_reply_to"] = new JsonObject { ["event_id"] = message.EventId },
            },
        };
        try
        {
            await speaker.SendMessageAsync(message.RoomId, content, "erp-reply-" + Hash(message.EventId), ct);
        }
        catch (MatrixRequestException e)
        {
            // Not rethrown: the homeserver would send the transaction again and the ERP would be called twice.
            Problem?.Invoke($"{message.RoomId}: a command's reply failed ({e.Errcode}: {e.Message})");
        }
    }
}
