using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Matrix.Homeserver.Observability;

/// <summary>
/// Writes each log entry as one line of text or one JSON object (<c>logging.format</c>, switchable on reload). JSON
/// entries carry <c>time</c>, <c>level</c>, <c>category</c>, <c>message</c>, the request's <c>request_id</c> and
/// <c>user_id</c> where known, the entry's named values (snake_case) and <c>exception</c>. Log messages never carry
/// access tokens or passwords: that is each call site's rule, and the request URL (which may) is never logged.
/// </summary>
public sealed class ConsoleLogFormatter(LogSettings settings) : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "homeserver";

    private static readonly HashSet<string> FixedFields = ["time", "level", "category", "message", "request_id", "user_id", "event_id", "exception"];

    public override void Write<TState>(in LogEntry<TState> entry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = entry.Formatter(entry.State, entry.Exception);
        if (string.IsNullOrEmpty(message) && entry.Exception is null)
            return;
        var request = RequestLogContext.Current;
        if (settings.Json)
            WriteJson(entry, message, request, textWriter);
        else
            WriteText(entry, message, request, textWriter);
    }

    private static void WriteText<TState>(in LogEntry<TState> entry, string message, RequestLogContext? request, TextWriter writer)
    {
        var line = new StringBuilder();
        line.Append(DateTime.Now.ToString("yyyy-MM-dd HH:mm:ss ", System.Globalization.CultureInfo.InvariantCulture))
            .Append(ShortLevel(entry.LogLevel)).Append(": ").Append(entry.Category).Append('[').Append(entry.EventId.Id).Append("] ");
        if (request is not null)
            line.Append('{').Append(request.RequestId).Append(request.UserId is null ? "" : " " + request.UserId).Append("} ");
        line.Append(message.ReplaceLineEndings(" "));
        if (entry.Exception is not null)
            line.Append('\n').Append(entry.Exception);
        writer.Write(line.Append('\n'));
    }

    private static void WriteJson<TState>(in LogEntry<TState> entry, string message, RequestLogContext? request, TextWriter writer)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("time", DateTimeOffset.UtcNow);
            json.WriteString("level", JsonLevel(entry.LogLevel));
            json.WriteString("category", entry.Category);
            json.WriteString("message", message);
            if (request is not null)
            {
                json.WriteString("request_id", request.RequestId);
                if (request.UserId is not null)
                    json.WriteString("user_id", request.UserId);
            }
            if (entry.EventId.Id != 0)
                json.WriteNumber("event_id", entry.EventId.Id);
            if (entry.State is IReadOnlyList<KeyValuePair<string, object?>> values)
                foreach (var (name, value) in values)
                {
                    var field = JsonNamingPolicy.SnakeCaseLower.ConvertName(name);
                    if (name == "{OriginalFormat}" || FixedFields.Contains(field))
                        continue;
                    WriteValue(json, field, value);
                }
            if (entry.Exception is not null)
                json.WriteString("exception", entry.Exception.ToString());
            json.WriteEndObject();
        }
        writer.Write(Encoding.UTF8.GetString(buffer.WrittenSpan));
        writer.Write('\n');
    }

    private static void WriteValue(Utf8JsonWriter json, string field, object? value)
    {
        switch (value)
        {
            case null: json.WriteNull(field); break;
            case bool b: json.WriteBoolean(field, b); break;
            case int or long or short or byte or uint or ushort:
                json.WriteNumber(field, Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case double or float or decimal:
                json.WriteNumber(field, Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            default: json.WriteString(field, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)); break;
        }
    }

    private static string ShortLevel(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        _ => "crit",
    };

    private static string JsonLevel(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warning",
        LogLevel.Error => "error",
        _ => "critical",
    };
}
