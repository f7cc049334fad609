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
    /// Invite people to the team (with a role no higher than one's own: [`Role::may_grant`]).
    InviteTeam,
}

impl Role {
    /// Owner: everything. Admin: refunds, keys, webhooks, settings, invitations up to
    /// admin. Staff: refunds. Viewer: read only.
    pub fn can(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Owner => true,
            Role::Admin => !matches!(action, ManageTeam),
            Role::Staff => matches!(action, Read | Refund),
            Role::Viewer => matches!(action, Read),
        }
    }

    /// Whether this role may invite someone as `role`: it must allow
    /// [`Action::InviteTeam`], and nobody grants more than they hold.
    pub fn may_grant(self, role: Role) -> bool {
        self.can(Action::InviteTeam) && role.rank() <= self.rank()
    }

    fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Staff => 1,
            Role::Viewer => 0,
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
            InviteTeam,
        ];
        let allowed = |r: Role| all.into_iter().filter(|a| r.can(*a)).collect::<Vec<_>>();
        assert_eq!(allowed(Role::Owner), all.to_vec());
        assert_eq!(
            allowed(Role::Admin),
            vec![
                Read,
                Refund,
                ManageKeys,
                ManageWebhooks,
                ManageSettings,
                InviteTeam
            ]
        );
        assert_eq!(allowed(Role::Staff), vec![Read, Refund]);
        assert_eq!(allowed(Role::Viewer), vec![Read]);
    }

    #[test]
    fn nobody_invites_above_their_own_role() {
        use Role::*;
        let all = [Owner, Admin, Staff, Viewer];
        let grants = |r: Role| {
            all.into_iter()
                .filter(|g| r.may_grant(*g))
                .collect::<Vec<_>>()
        };
        assert_eq!(grants(Owner), all.to_vec());
        assert_eq!(grants(Admin), vec![Admin, Staff, Viewer]);
        assert_eq!(grants(Staff), vec![]);
        assert_eq!(grants(Viewer), vec![]);
    }

    #[test]
    fn role_names_round_trip() {
        for r in [Role::Owner, Role::Admin, Role::Staff, Role::Viewer] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
