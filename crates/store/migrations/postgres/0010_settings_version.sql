-- What every change of an account reads besides the ticket and the
-- routing state (notification preferences and defaults, the notification
-- e-mail settings, the enabled workflows) is kept per node and checked
-- against this version, which every write of them bumps in its own
-- transaction; it is read with `routing_version`, in the same statement.
ALTER TABLE accounts ADD COLUMN settings_version BIGINT NOT NULL DEFAULT 0;
