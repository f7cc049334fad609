//! What each back-office role may do: the one place every handler asks.
pub use crate::store::entities::dashboard_user::Role;

/// Something a back-office user does that not every role may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// See transactions, figures, deliveries (every role).
    Read,
    /// Refund a transaction.
    Refund,
    /// Create, roll and revoke API keys.
    ManageKeys,
    /// Change the webhook endpoint, rotate its secret, redeliver events.
    ManageWebhooks,
    /// Checkout settings: origins, signed amounts, signing secret.
    ManageSettings,
    /// Add, remove and change the role of team members.
    ManageTeam,
}

impl Role {
    /// Owner: everything. Admin: refunds, keys, webhooks, settings. Staff: refunds.
    /// Viewer: read only.
    pub fn can(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Owner => true,
            Role::Admin => !matches!(action, ManageTeam),
            Role::Staff => matches!(action, Read | Refund),
            Role::Viewer => matches!(action, Read),
        }
    }

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a stored or typed role name.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Owner, Role::Admin, Role::Staff, Role::Viewer]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_may_do_exactly_what_the_issue_lists() {
        use Action::*;
        let all = [
            Read,
            Refund,
            ManageKeys,
            ManageWebhooks,
            ManageSettings,
            ManageTeam,
        ];
        let allowed = |r: Role| all.into_iter().filter(|a| r.can(*a)).collect::<Vec<_>>();
        assert_eq!(allowed(Role::Owner), all.to_vec());
        assert_eq!(
            allowed(Role::Admin),
            vec![Read, Refund, ManageKeys, ManageWebhooks, ManageSettings]
        );
        assert_eq!(allowed(Role::Staff), vec![Read, Refund]);
        assert_eq!(allowed(Role::Viewer), vec![Read]);
    }

    #[test]
    fn role_names_round_trip() {
        for r in [Role::Owner, Role::Admin, Role::Staff, Role::Viewer] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
