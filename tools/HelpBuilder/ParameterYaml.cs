namespace HelpBuilder;

/// <summary>
/// Reads the yaml block under each parameter of a PlatyPS v2 page. Only the small, fixed shape PlatyPS writes is
/// supported (scalars, inline or dash lists, and the ParameterSets list of maps), so no yaml library is needed.
/// </summary>
internal static class ParameterYaml
{
    public static void Apply(ParameterHelp parameter, string yaml)
    {
        ParameterSetUse? set = null;
        string? listKey = null;
        foreach (var rawLine in yaml.Split('\n'))
        {
            var line = rawLine.TrimEnd();
            if (line.Trim().Length == 0) continue;
            var indented = line.StartsWith(' ');
            var trimmed = line.Trim();

            if (trimmed.StartsWith("- ", StringComparison.Ordinal) && listKey is not null)
            {
                var item = trimmed[2..].Trim();
                if (listKey == "ParameterSets")
                {
                    set = new ParameterSetUse();
                    parameter.Sets.Add(set);
                    ApplySetField(set, item);
                }
                else AddToList(parameter, listKey, Unquote(item));
                continue;
            }
            if (indented && set is not null)
            {
                ApplySetField(set, trimmed);
                continue;
            }

            var (key, value) = Split(trimmed);
            set = null;
            listKey = value.Length == 0 ? key : null;
            switch (key)
            {
                case "Type": parameter.Type = Unquote(value); break;
                case "DefaultValue": parameter.DefaultValue = Unquote(value) is { Length: > 0 } d ? d : null; break;
                case "SupportsWildcards": parameter.SupportsWildcards = IsTrue(value); break;
                case "Aliases" or "AcceptedValues":
                    foreach (var item in InlineList(value)) AddToList(parameter, key, item);
                    break;
            }
        }
    }

    private static void ApplySetField(ParameterSetUse set, string field)
    {
        var (key, value) = Split(field);
        switch (key)
        {
            case "Name": set.Name = Unquote(value); break;
            case "Position": set.Position = Unquote(value); break;
            case "IsRequired": set.IsRequired = IsTrue(value); break;
            case "ValueFromPipeline": set.ValueFromPipeline = IsTrue(value); break;
            case "ValueFromPipelineByPropertyName": set.ValueFromPipelineByPropertyName = IsTrue(value); break;
        }
    }

    private static void AddToList(ParameterHelp parameter, string key, string item)
    {
        if (item.Length == 0) return;
        if (key == "Aliases") parameter.Aliases.Add(item);
        else if (key == "AcceptedValues") parameter.AcceptedValues.Add(item);
    }

    private static (string Key, string Value) Split(string line)
    {
        var colon = line.IndexOf(':');
        return colon < 0 ? (line, "") : (line[..colon].Trim(), line[(colon + 1)..].Trim());
    }

    private static IEnumerable<string> InlineList(string value)
    {
        value = value.Trim();
        if (!value.StartsWith('[')) return value.Length == 0 ? Array.Empty<string>() : new[] { Unquote(value) };
        return value.Trim('[', ']').Split(',').Select(v => Unquote(v.Trim())).Where(v => v.Length > 0);
    }

    private static bool IsTrue(string value) => value.Trim().Equals("true", StringComparison.OrdinalIgnoreCase);

    private static string Unquote(string value)
    {
        value = value.Trim();
        if (value.Length >= 2 && (value[0] == '\'' && value[^1] == '\'' || value[0] == '"' && value[^1] == '"'))
            return value[1..^1];
        return value;
    }
}
