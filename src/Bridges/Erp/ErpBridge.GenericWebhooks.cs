using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Erp;

/// <summary>
/// <c>!erp webhook create|list|remove|transform</c>: webhooks room admins manage from the room, without a restart
/// (as matrix-hookshot's generic webhooks). Only users with <c>generic_webhooks.power_level</c> in the room may; a new
/// webhook's secret URL goes to its creator in a direct message, never into the room.
/// </summary>
public sealed partial class ErpBridge
{
    public const string WebhookCommand = "webhook";

    private const string WebhookUsage = $"""
        {Prefix} {WebhookCommand} create <name>: a new webhook posting into this room (its URL comes in a direct message)
        {Prefix} {WebhookCommand} list: this room's webhooks
        {Prefix} {WebhookCommand} remove <name>: its URL stops working
        {Prefix} {WebhookCommand} transform <name> (then the JavaScript on the next lines, or "off")
        """;

    private async Task HandleWebhookCommandAsync(RoomEvent message, string text, CancellationToken ct)
    {
        var firstLine = text.Split('\n', 2);
        var words = firstLine[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var bot = _service.Bot;
        if (!_config.GenericWebhooks.Enabled)
        {
            await ReplyAsync(message, bot, "Room webhooks are disabled on this bridge.", null, ct);
            return;
        }
        var powers = await RoomPowers.ReadAsync(bot, message.RoomId, ct);
        if (powers.UserLevel(message.Sender) < _config.GenericWebhooks.PowerLevel)
        {
            await ReplyAsync(message, bot, $"Managing webhooks here needs power level {_config.GenericWebhooks.PowerLevel}.", null, ct);
            return;
        }
        var name = words.Length > 2 ? words[2] : "";
        string reply;
        switch (words.Length > 1 ? words[1].ToLowerInvariant() : "")
        {
            case "create" when Regex.IsMatch(name, "^[A-Za-z0-9_-]{1,64}$"):
                if (_generic.Create(message.RoomId, name, message.Sender) is not { } token)
                {
                    reply = $"This room already has a webhook named {name}.";
                    break;
                }
                await SendDirectAsync(message, $"The URL of the webhook {name} (it posts into {message.RoomId}; anyone who has it can post there, so keep it secret): "
                    + $"{_config.WebhookBaseUrl}/webhook/{token}", ct);
                reply = $"Created the webhook {name}; its URL was sent to you in a direct message.";
                break;
            case "list":
                var hooks = _generic.InRoom(message.RoomId);
                reply = hooks.Count == 0 ? "This room has no webhooks."
                    : "Webhooks here:\n" + string.Join("\n", hooks.Select(h => $"{h.Name} (created by {h.CreatedBy}{(h.Transform is null ? "" : ", with a transformation function")})"));
                break;
            case "remove" when name.Length > 0:
                reply = _generic.Remove(message.RoomId, name) ? $"Removed the webhook {name}; its URL no longer works." : $"This room has no webhook named {name}.";
                break;
            case "transform" when name.Length > 0:
                reply = SetTransform(message.RoomId, name, words.Length > 3 && words[3] == "off" ? null : CodeOf(firstLine.Length > 1 ? firstLine[1] : ""));
                break;
            default:
                reply = "Usage:\n" + WebhookUsage;
                break;
        }
        await ReplyAsync(message, bot, reply, null, ct);
    }

    private string SetTransform(string roomId, string name, string? code)
    {
        if (!_config.GenericWebhooks.AllowTransforms)
            return "Transformation functions are disabled on this bridge.";
        if (code is { Length: 0 })
            return $"Put the JavaScript on the lines after {Prefix} {WebhookCommand} transform {name} (or add \"off\").";
        try
        {
            if (code is not null)
                PayloadTransform.Parse(code, _config.Transforms.Limits);
        }
        catch (FormatException e)
        {
            return e.Message;
        }
        if (!_generic.SetTransform(roomId, name, code))
            return $"This room has no webhook named {name}.";
        return code is null ? $"The webhook {name} posts its payloads as they come again." : $"The webhook {name} now runs its payloads through the function.";
    }

    /// <summary>The code of a message, without the Markdown fence around it if there is one.</summary>
    private static string CodeOf(string text)
    {
        var fenced = Regex.Match(text, @"^\s*```[A-Za-z]*\n(?<code>.*?)\n?```\s*$", RegexOptions.Singleline);
        return (fenced.Success ? fenced.Groups["code"].Value : text).Trim();
    }

    /// <summary>Sends a notice to the command's sender in a direct room with the bridge's user (created once, reused).</summary>
    private async Task SendDirectAsync(RoomEvent command, string text, CancellationToken ct)
    {
        const string directRooms = "erp direct rooms";
        var bot = _service.Bot;
        if (_service.State.Get(directRooms, command.Sender) is not { } roomId)
        {
            roomId = await bot.CreateRoomAsync(new JsonObject
            {
                ["preset"] = "trusted_private_chat",
                ["is_direct"] = true,
                ["invite"] = new JsonArray(command.Sender),
                ["name"] = "ERP bridge",
            }, ct);
            _service.State.Set(directRooms, command.Sender, roomId);
            _service.State.Flush();
        }
        await bot.SendMessageAsync(roomId, new JsonObject { ["msgtype"] = "m.notice", ["body"] = text }, "erp-direct-" + Hash(command.EventId), ct);
    }
}
