using System.Text.Json;
using System.Text.Json.Nodes;

namespace SleapRtc.Protocol.Signaling;

/// <summary>
/// The classic discover_peers filter semantics: role exact, tags match-any, properties equal or
/// compared with $gte/$lte/$eq (a missing property fails $gte/$lte). Empty or absent parts do not filter,
/// as in Python where an empty list or dict is falsy. Unknown operators are ignored like classic does.
/// </summary>
public static class PeerFilter
{
    public static bool Matches(JsonObject? filters, string role, JsonObject? metadata)
    {
        if (filters is null) return true;

        if (filters.GetString("role") is { Length: > 0 } wantedRole && !string.Equals(wantedRole, role, StringComparison.Ordinal))
            return false;

        if (filters.TryGetPropertyValue("tags", out var tagsNode) && tagsNode is JsonArray wantedTags && wantedTags.Count > 0)
        {
            var haveTags = metadata?.TryGetPropertyValue("tags", out var have) == true ? have as JsonArray : null;
            if (haveTags is null || !wantedTags.Any(w => haveTags.Any(h => ValuesEqual(w, h)))) return false;
        }

        if (filters.GetObject("properties") is { Count: > 0 } wantedProperties)
        {
            var properties = metadata?.GetObject("properties");
            foreach (var (key, condition) in wantedProperties)
            {
                JsonNode? actual = null;
                var present = properties is not null && properties.TryGetPropertyValue(key, out actual);
                if (!PropertyMatches(condition, present, actual)) return false;
            }
        }
        return true;
    }

    private static bool PropertyMatches(JsonNode? condition, bool present, JsonNode? actual)
    {
        if (condition is not JsonObject operators) return present && ValuesEqual(condition, actual);

        foreach (var (op, operand) in operators)
        {
            switch (op)
            {
                case "$gte":
                    if (!present || Compare(actual, operand) is not (>= 0)) return false;
                    break;
                case "$lte":
                    if (!present || Compare(actual, operand) is not (<= 0)) return false;
                    break;
                case "$eq":
                    if (!present || !ValuesEqual(actual, operand)) return false;
                    break;
            }
        }
        return true;
    }

    /// <summary>Orders two JSON scalars of the same kind (numbers or strings); null when Python would raise TypeError.</summary>
    private static int? Compare(JsonNode? left, JsonNode? right)
    {
        if (TryNumber(left, out var a) && TryNumber(right, out var b)) return a.CompareTo(b);
        if (TryString(left, out var s) && TryString(right, out var t)) return string.CompareOrdinal(s, t);
        return null;
    }

    /// <summary>Python equality on JSON values: numbers by value (1 == 1.0), strings ordinal, containers structurally.</summary>
    public static bool ValuesEqual(JsonNode? left, JsonNode? right)
    {
        if (left is null || right is null) return left is null && right is null;
        if (left is JsonValue ls && right is JsonValue rs && ls.TryGetValue<string>(out var a1) && rs.TryGetValue<string>(out var b1))
            return string.Equals(a1, b1, StringComparison.Ordinal);
        if (TryNumber(left, out var a) && TryNumber(right, out var b)) return a == b;
        return JsonNode.DeepEquals(left, right);
    }

    private static bool TryNumber(JsonNode? node, out decimal number)
    {
        number = 0;
        if (node is not JsonValue value) return false;
        var kind = value.GetValueKind();
        if (kind == JsonValueKind.True || kind == JsonValueKind.False)
        {
            // Python: True == 1 and True >= 1 hold, because bool is an int subclass.
            number = kind == JsonValueKind.True ? 1 : 0;
            return true;
        }
        if (kind != JsonValueKind.Number) return false;
        if (value.TryGetValue<long>(out var integer))
        {
            number = integer;
            return true;
        }
        if (value.TryGetValue<int>(out var small))
        {
            number = small;
            return true;
        }
        if (value.TryGetValue<decimal>(out number)) return true;
        if (value.TryGetValue<double>(out var d) && !double.IsNaN(d) && Math.Abs(d) < 7.9e28)
        {
            number = (decimal)d;
            return true;
        }
        return decimal.TryParse(value.ToJsonString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out number);
    }

    private static bool TryString(JsonNode? node, out string text)
    {
        text = "";
        return node is JsonValue value && value.GetValueKind() == JsonValueKind.String && value.TryGetValue(out text!);
    }
}

/// <summary>The classic update_metadata merge: tags = union (old order first), properties = shallow merge, other keys replaced.</summary>
public static class MetadataMerge
{
    public static JsonObject Merge(JsonObject? current, JsonObject update)
    {
        var merged = current?.DeepClone() as JsonObject ?? new JsonObject();
        foreach (var (key, value) in update)
        {
            if (key == "tags" && value is JsonArray newTags && merged["tags"] is JsonArray oldTags)
            {
                foreach (var tag in newTags)
                    if (!oldTags.Any(t => PeerFilter.ValuesEqual(t, tag))) oldTags.Add(tag?.DeepClone());
            }
            else if (key == "properties" && value is JsonObject newProperties && merged["properties"] is JsonObject oldProperties)
            {
                foreach (var (name, property) in newProperties) oldProperties[name] = property?.DeepClone();
            }
            else
            {
                merged[key] = value?.DeepClone();
            }
        }
        return merged;
    }
}
