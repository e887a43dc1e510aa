"""Live feeds: day-ahead prices (OTE), the retail tariff, weather forecasts (Open-Meteo) → a ForecastSource."""
