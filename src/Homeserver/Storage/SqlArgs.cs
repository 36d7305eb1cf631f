using System.Collections.Concurrent;
using System.Data;
using System.Reflection;
using Dapper;

namespace Matrix.Homeserver.Storage;

/// <summary>
/// Statement parameters built up by name (lists, merged statements), each handed to the command with its column type.
/// Used instead of Dapper's <c>DynamicParameters</c>, which reads every parameter's <c>DbType</c> back after setting
/// its value: Npgsql works that out from the value anew on each read, a measurable share of the CPU a send costs.
/// </summary>
public sealed class SqlArgs : SqlMapper.IDynamicParameters
{
    private static readonly ConcurrentDictionary<Type, PropertyInfo[]> PropertiesByType = new();

    private readonly List<(string Name, object? Value, DbType? Type)> _parameters = [];

    public SqlArgs()
    {
    }

    /// <summary>Starts with an object's public properties (an anonymous type), typed by their declared types.</summary>
    public SqlArgs(object template) => AddProperties(null, template);

    public void Add(string name, object? value) => _parameters.Add((name, value, value is null ? null : TypeOf(value.GetType())));

    /// <summary>Adds each of an object's public properties, named as statement <paramref name="batchIndex"/> of a batch spells them (when not null).</summary>
    public void AddProperties(int? batchIndex, object template)
    {
        foreach (var property in PropertiesOf(template))
            _parameters.Add((Named(property.Name, batchIndex), property.GetValue(template), TypeOf(property.PropertyType)));
    }

    /// <summary>Adds another set's parameters, named as statement <paramref name="batchIndex"/> of a batch spells them (when not null).</summary>
    public void AddAll(int? batchIndex, SqlArgs other)
    {
        foreach (var (name, value, type) in other._parameters)
            _parameters.Add((Named(name, batchIndex), value, type));
    }

    private static string Named(string name, int? batchIndex) => batchIndex is { } index ? BatchNames.Parameter(name, index) : name;

    /// <summary>Whether an object's properties can all be bound as single values (none is a list Dapper would expand).</summary>
    public static bool IsFlat(object template) =>
        PropertiesOf(template).All(p => p.PropertyType == typeof(string) || p.PropertyType == typeof(byte[]) || !typeof(System.Collections.IEnumerable).IsAssignableFrom(p.PropertyType));

    private static PropertyInfo[] PropertiesOf(object template) =>
        PropertiesByType.GetOrAdd(template.GetType(), t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0).ToArray());

    void SqlMapper.IDynamicParameters.AddParameters(IDbCommand command, SqlMapper.Identity identity)
    {
        foreach (var (name, value, type) in _parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value switch
            {
                null => DBNull.Value,
                Enum e => Convert.ChangeType(e, Enum.GetUnderlyingType(e.GetType()), System.Globalization.CultureInfo.InvariantCulture),
                _ => value,
            };
            if (type is { } known)
                parameter.DbType = known;
            command.Parameters.Add(parameter);
        }
    }

    /// <summary>The column type of a value's type, so a null value still has one.</summary>
    private static DbType? TypeOf(Type type) => (Nullable.GetUnderlyingType(type) ?? type) switch
    {
        var t when t == typeof(string) => DbType.String,
        var t when t == typeof(long) => DbType.Int64,
        var t when t == typeof(int) => DbType.Int32,
        var t when t == typeof(double) => DbType.Double,
        var t when t == typeof(bool) => DbType.Boolean,
        var t when t == typeof(byte[]) => DbType.Binary,
        _ => null,
    };
}
